"""Parse raw feed columns strictly and attach a rejection reason to every bad row.

Everything here returns ``pl.Expr`` or ``LazyFrame``; nothing collects or does I/O.
A row's reason is the first failing check in ``_checks`` order; a valid row has none.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ingest.fields import (
    ACTIONS,
    ALL_FIELDS,
    MAX_TEXT_LENGTH,
    REQUIRED_FIELDS,
    Reason,
)

ROW = "row"
REJECT_CODE = "reject_code"
REJECT_FIELD = "reject_field"
REJECT_MESSAGE = "reject_message"
TEXT_FIELDS = ("trade_id", "commodity", "currency", "unit", "grade", "action")
FLOAT_FIELDS = ("price", "quantity", "fe_pct", "moisture_pct")
_EPOCH_MS = r"^-?\d{1,15}$"
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%z"


def raw_frame(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Every known field present (missing ones as nulls), unknown columns dropped, row numbers."""
    present = lf.collect_schema()
    columns = [
        pl.col(name) if name in present else pl.lit(None, dtype=pl.String).alias(name)
        for name in ALL_FIELDS
    ]
    return lf.select(columns).with_row_index(ROW, offset=1)


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    return col if dtype == pl.String else col.cast(pl.String)


def _parse_float(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_numeric():
        return pl.col(name).cast(pl.Float64)
    return pl.col(name).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)


def _parse_int(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64)
    text = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(text.str.contains(r"^-?\d{1,18}$")).then(text.cast(pl.Int64, strict=False))


def _parse_instant(name: str, dtype: pl.DataType) -> pl.Expr:
    """ISO-8601 with an explicit offset (or Z), or integer epoch milliseconds, to UTC."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
        return pl.col(name).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype.is_integer():
        return pl.from_epoch(pl.col(name).cast(pl.Int64), time_unit="ms").dt.replace_time_zone(
            "UTC"
        )
    text = pl.col(name).cast(pl.String).str.strip_chars()
    iso = (
        text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
        .str.replace(r"Z$", "+00:00")
        .str.to_datetime(format=_ISO_FORMAT, strict=False, time_unit="us", time_zone="UTC")
    )
    epoch = pl.from_epoch(text.cast(pl.Int64, strict=False), time_unit="ms").dt.replace_time_zone(
        "UTC"
    )
    return pl.when(text.str.contains(_EPOCH_MS)).then(epoch).otherwise(iso)


def parsed_frame(raw: pl.LazyFrame) -> pl.LazyFrame:
    """Typed columns beside the raw text (``<field>__raw``) needed to tell missing from bad."""
    schema = raw.collect_schema()
    typed: list[pl.Expr] = []
    for name in ALL_FIELDS:
        dtype = schema[name]
        typed.append(_as_text(name, dtype).alias(f"{name}__raw"))
        if name == "traded_at":
            typed.append(_parse_instant(name, dtype).alias(name))
        elif name in FLOAT_FIELDS:
            typed.append(_parse_float(name, dtype).alias(name))
        elif name == "seq":
            typed.append(_parse_int(name, dtype).alias(name))
        else:
            typed.append(_as_text(name, dtype).alias(name))
    return raw.select(pl.col(ROW), *typed).with_columns(
        pl.col("action").fill_null("new").str.strip_chars().str.to_lowercase(),
        pl.col("currency").str.strip_chars().str.to_uppercase(),
        pl.col("unit").str.strip_chars(),
        pl.col("commodity").str.strip_chars().str.to_uppercase(),
        pl.col("trade_id").str.strip_chars(),
    )


def reference_frame(rows: list[dict]) -> pl.LazyFrame:
    """The commodity facts the checks need, one row per catalogue commodity."""
    schema = {
        "commodity": pl.String,
        "commodity_id": pl.Int64,
        "spec_unit": pl.String,
        "spec_currency": pl.String,
        "band_low": pl.Float64,
        "band_high": pl.Float64,
        "listed_on": pl.Date,
        "fe_low": pl.Float64,
        "fe_high": pl.Float64,
    }
    return pl.LazyFrame(rows, schema=schema)


def _missing(name: str) -> pl.Expr:
    raw = pl.col(f"{name}__raw")
    return raw.is_null() | (raw.str.strip_chars() == "")


def _checks(
    now: dt.datetime, future_tolerance: dt.timedelta
) -> list[tuple[str, Reason, pl.Expr, str]]:
    """(field, reason, bad-row predicate, message) in the order they are applied."""
    checks: list[tuple[str, Reason, pl.Expr, str]] = []
    for name in REQUIRED_FIELDS:
        checks.append((name, Reason.MISSING_FIELD, _missing(name), f"{name} is required"))
    for name in TEXT_FIELDS:
        raw = pl.col(f"{name}__raw")
        bad = raw.str.contains("\x00", literal=True) | (raw.str.len_chars() > MAX_TEXT_LENGTH)
        checks.append(
            (
                name,
                Reason.BAD_TEXT,
                bad,
                f"{name} has a NUL byte or exceeds {MAX_TEXT_LENGTH} characters",
            )
        )
    for name in ("traded_at", *FLOAT_FIELDS, "seq"):
        bad = ~_missing(name) & pl.col(name).is_null()
        what = "an ISO-8601 time with offset or epoch ms" if name == "traded_at" else "a number"
        if name == "seq":
            what = "an integer"
        checks.append((name, Reason.BAD_TYPE, bad, f"{name} is not {what}"))
    for name in FLOAT_FIELDS:
        checks.append(
            (
                name,
                Reason.NOT_FINITE,
                pl.col(name).is_nan() | pl.col(name).is_infinite(),
                f"{name} must be finite",
            )
        )
    checks += [
        (
            "action",
            Reason.UNSUPPORTED_ACTION,
            ~pl.col("action").is_in(ACTIONS) | (pl.col("action") != "new"),
            "only action 'new' is accepted on this path",
        ),
        (
            "commodity",
            Reason.UNKNOWN_COMMODITY,
            pl.col("commodity_id").is_null(),
            "commodity is not in the catalogue",
        ),
        (
            "unit",
            Reason.UNIT_MISMATCH,
            pl.col("unit") != pl.col("spec_unit"),
            "unit differs from the commodity's benchmark unit",
        ),
        (
            "currency",
            Reason.CURRENCY_MISMATCH,
            pl.col("currency") != pl.col("spec_currency"),
            "currency differs from the commodity's benchmark currency",
        ),
        ("price", Reason.NON_POSITIVE_PRICE, pl.col("price") <= 0, "price must be > 0"),
        ("quantity", Reason.NON_POSITIVE_QUANTITY, pl.col("quantity") <= 0, "quantity must be > 0"),
        (
            "price",
            Reason.PRICE_OUT_OF_BAND,
            (pl.col("price") < pl.col("band_low")) | (pl.col("price") > pl.col("band_high")),
            "price is outside the commodity's sanity band",
        ),
        (
            "fe_pct",
            Reason.QUALITY_OUT_OF_RANGE,
            (pl.col("fe_pct") < pl.col("fe_low")) | (pl.col("fe_pct") > pl.col("fe_high")),
            "fe_pct is outside the specification's accepted range",
        ),
        (
            "traded_at",
            Reason.FUTURE_TIMESTAMP,
            pl.col("traded_at") > pl.lit(now + future_tolerance),
            "traded_at is in the future",
        ),
        (
            "traded_at",
            Reason.BEFORE_LISTING,
            pl.col("traded_at").dt.date() < pl.col("listed_on"),
            "traded_at is before the commodity's listing date",
        ),
    ]
    return checks


def validated_frame(
    raw: pl.LazyFrame,
    reference: pl.LazyFrame,
    *,
    now: dt.datetime,
    future_tolerance: dt.timedelta = dt.timedelta(minutes=5),
) -> pl.LazyFrame:
    """Typed rows joined to their commodity, each with its first failing check (or nulls)."""
    rows = parsed_frame(raw).join(reference, on="commodity", how="left", maintain_order="left")
    checks = [
        (bad.fill_null(False), name, reason, text)
        for name, reason, bad, text in _checks(now, future_tolerance)
    ]

    def first_failing(position: int) -> pl.Expr:
        return pl.coalesce(
            [pl.when(check[0]).then(pl.lit(str(check[position]))) for check in checks]
        )

    rows = rows.with_columns(
        first_failing(1).alias(REJECT_FIELD),
        first_failing(2).alias(REJECT_CODE),
        first_failing(3).alias(REJECT_MESSAGE),
    )
    first_of_id = pl.col("trade_id").is_first_distinct().over(pl.col(REJECT_CODE).is_null())
    duplicate = pl.col(REJECT_CODE).is_null() & ~first_of_id
    return rows.with_columns(
        pl.when(duplicate)
        .then(pl.lit(Reason.DUPLICATE_IN_BATCH.value))
        .otherwise(pl.col(REJECT_CODE))
        .alias(REJECT_CODE),
        pl.when(duplicate)
        .then(pl.lit("trade_id"))
        .otherwise(pl.col(REJECT_FIELD))
        .alias(REJECT_FIELD),
        pl.when(duplicate)
        .then(pl.lit("trade_id appears earlier in the same batch"))
        .otherwise(pl.col(REJECT_MESSAGE))
        .alias(REJECT_MESSAGE),
    )
