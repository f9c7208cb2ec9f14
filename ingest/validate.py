"""Parse raw feed columns strictly and attach a rejection reason to every bad row.

Everything here returns ``pl.Expr`` or ``LazyFrame``; nothing collects or does I/O.
A row's reason is the first failing check in ``_checks`` order; a valid row has none.
Numbers are parsed from text with strict casts (``1.9`` is never ``1``; ``1.9x`` is a
``bad_type``); a typed column (Parquet, Arrow) is used as it is when its type fits.
Codes (commodity, unit, currency, action, grade) are matched exactly; participant codes
(buyer, seller) are kept as sent. ``affiliated`` is a boolean: ``true`` or ``false`` (any
case), ``1`` or ``0``, or a typed boolean or integer column.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from core.fields import (
    ACTIONS,
    AFFILIATED_FIELD,
    ALL_FIELDS,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    NUMERIC_QUALITY_FIELDS,
    PARTICIPANT_FIELDS,
    REQUIRED_FIELDS,
    Reason,
)
from ingest.allowed import Allowed, Message
from ingest.normalise import normalised_columns, rule_columns
from ingest.rules import COMMODITY_INDEX, FeedRules, FxTable

ROW = "row"
REJECT_CODE = "reject_code"
REJECT_FIELD = "reject_field"
REJECT_MESSAGE = "reject_message"
TEXT_FIELDS = ("trade_id", "commodity", "currency", "unit", "grade", "action", *PARTICIPANT_FIELDS)
FLOAT_FIELDS = ("price", "quantity", *NUMERIC_QUALITY_FIELDS)
# chrono's ISO 8601 / RFC 3339 form: date, T (or space), time, optional fraction, and an
# offset that is required (Z, +08:00 or +0800).
_ISO_FORMAT = "%+"
_UTC = pl.Datetime("us", "UTC")
# The instants a feed may name at all (years 1 to 9999, as ISO-8601 text allows), in epoch
# milliseconds; beyond them a typed value cannot even be printed and an integer would
# overflow into some other instant when scaled to microseconds.
_MIN_MS, _MAX_MS = -62_135_596_800_000, 253_402_300_799_999
_PER_MS = {"ms": 1, "us": 1_000, "ns": 1_000_000}
_MIN_DAY, _MAX_DAY = -719_162, 2_932_896
# A text starting with one of these is run as a formula by a spreadsheet that opens it.
_FORMULA_START = r"^[=+\-@\t\r]"
_TRUE, _FALSE = ("true", "1"), ("false", "0")


def raw_frame(lf: pl.LazyFrame, row_offset: int = 1) -> pl.LazyFrame:
    """The known fields the feed has (others dropped), with row numbers."""
    present = lf.collect_schema()
    return lf.select(n for n in ALL_FIELDS if n in present).with_row_index(ROW, offset=row_offset)


def _unusable(dtype: pl.DataType) -> bool:
    """Types no field can hold: nested values, raw bytes and durations."""
    return dtype.is_nested() or dtype in (pl.Binary, pl.Object) or isinstance(dtype, pl.Duration)


def _representable(name: str, dtype: pl.DataType) -> pl.Expr:
    """A typed column with its instants outside years 1 to 9999 as nulls (casting those
    to text panics)."""
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        physical, per_ms = col.cast(pl.Int64), _PER_MS[dtype.time_unit]
        low, high = max(_MIN_MS * per_ms, -(2**63)), min(_MAX_MS * per_ms, 2**63 - 1)
        return pl.when(physical.is_between(low, high)).then(col)
    if dtype == pl.Date:
        return pl.when(col.cast(pl.Int32).is_between(_MIN_DAY, _MAX_DAY)).then(col)
    return col


def _has_wrong_type(name: str, dtype: pl.DataType) -> bool:
    """Whether a typed column's type is one the field cannot take (its values are bad_type)."""
    if _unusable(dtype) or (name in FLOAT_FIELDS and dtype == pl.Boolean):
        return True
    if name in TEXT_FIELDS and (dtype.is_float() or dtype.is_temporal()):
        return True  # e.g. an identifier stored as a float has lost digits
    if name == AFFILIATED_FIELD:
        return not (dtype in (pl.Boolean, pl.String, pl.Null) or dtype.is_integer())
    return name == "traded_at" and not (
        dtype in (pl.String, pl.Null) or dtype.is_integer() or isinstance(dtype, pl.Datetime)
    )


def _expected(name: str) -> str:
    """What a value of the field must be, as a rejection says it."""
    if name == "traded_at":
        return "an ISO-8601 time with an offset (or Z), or epoch milliseconds"
    if name in FLOAT_FIELDS:
        return "a number"
    if name == "seq":
        return "an integer"
    if name == AFFILIATED_FIELD:
        return "a boolean: true or false (or 1 or 0)"
    return "text"


def wrong_type_column(name: str) -> str:
    return f"{name}__wrong_type"


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    if _unusable(dtype):
        return pl.lit(None, dtype=pl.String)
    if dtype == pl.String:
        return pl.col(name)
    text = _representable(name, dtype).cast(pl.String)
    return text.fill_null(pl.when(pl.col(name).is_not_null()).then(pl.lit("(out of range)")))


def _parse_float(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_numeric():
        return pl.col(name).cast(pl.Float64)
    if dtype == pl.String:
        return pl.col(name).cast(pl.Float64, strict=False)
    return pl.lit(None, dtype=pl.Float64)


def _parse_int(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64, strict=False)
    if dtype == pl.String:
        return pl.col(name).cast(pl.Int64, strict=False)  # "1.5", "1e3", " 7" are not integers
    return pl.lit(None, dtype=pl.Int64)


def _parse_bool(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Boolean:
        return pl.col(name)
    if dtype == pl.String:
        text = pl.col(name).str.to_lowercase()
        return pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False)
    if dtype.is_integer():
        return pl.when(pl.col(name) == 1).then(True).when(pl.col(name) == 0).then(False)
    return pl.lit(None, dtype=pl.Boolean)


def _parse_instant(name: str, dtype: pl.DataType) -> pl.Expr:
    """ISO-8601 with an explicit offset (or Z), or integer epoch milliseconds, to UTC."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return pl.lit(None, dtype=_UTC)
        instant = _representable(name, dtype)
        return instant.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype.is_integer():
        return _from_epoch_ms(pl.col(name).cast(pl.Int64, strict=False))
    if dtype != pl.String:
        return pl.lit(None, dtype=_UTC)
    text = pl.col(name)
    iso = text.str.to_datetime(
        format=_ISO_FORMAT, strict=False, time_unit="us", time_zone="UTC", cache=False
    )
    epoch_ms = text.cast(pl.Int64, strict=False)
    return pl.when(epoch_ms.is_not_null()).then(_from_epoch_ms(epoch_ms)).otherwise(iso)


def _from_epoch_ms(epoch_ms: pl.Expr) -> pl.Expr:
    """Epoch milliseconds to a UTC instant; null outside years 1 to 9999."""
    inside = pl.when(epoch_ms.is_between(_MIN_MS, _MAX_MS)).then(epoch_ms)
    return pl.from_epoch(inside, time_unit="ms").dt.replace_time_zone("UTC")


def _typed_dtype(name: str) -> pl.DataType:
    if name == "traded_at":
        return _UTC
    if name in FLOAT_FIELDS:
        return pl.Float64()
    if name == AFFILIATED_FIELD:
        return pl.Boolean()
    return pl.Int64() if name == "seq" else pl.String()


def parsed_frame(raw: pl.LazyFrame, present: set[str]) -> pl.LazyFrame:
    """Typed columns beside the raw text (``<field>__raw``) needed to tell missing from bad.

    A required field the feed lacks is an empty text column (every row ``missing_field``);
    an optional one is a column of the ``Null`` type, which costs nothing.
    """
    schema = raw.collect_schema()
    typed: list[pl.Expr] = []
    for name in ALL_FIELDS:
        if name not in present:
            if name in REQUIRED_FIELDS:
                typed += [
                    pl.lit(None, dtype=pl.String).alias(f"{name}__raw"),
                    pl.lit(None, dtype=_typed_dtype(name)).alias(name),
                ]
            else:
                typed += [pl.lit(None).alias(f"{name}__raw"), pl.lit(None).alias(name)]
            continue
        dtype = schema[name]
        typed.append(_as_text(name, dtype).alias(f"{name}__raw"))
        if _has_wrong_type(name, dtype):
            typed.append(pl.col(name).is_not_null().alias(wrong_type_column(name)))
        if name == "traded_at":
            typed.append(_parse_instant(name, dtype).alias(name))
        elif name in FLOAT_FIELDS:
            typed.append(_parse_float(name, dtype).alias(name))
        elif name == "seq":
            typed.append(_parse_int(name, dtype).alias(name))
        elif name == AFFILIATED_FIELD:
            typed.append(_parse_bool(name, dtype).alias(name))
        else:  # an empty text is an absent value (a CSV writer may quote it: "")
            text = _as_text(name, dtype)
            typed.append(pl.when(text != "").then(text).alias(name))
    action = pl.col("action").fill_null("new") if "action" in present else pl.lit("new")
    return raw.select(pl.col(ROW), *typed).with_columns(action.alias("action"))


def joined_frame(
    parsed: pl.LazyFrame, rules: FeedRules, fx: FxTable, present: set[str]
) -> pl.LazyFrame:
    """Rows with their commodity's rules looked up and their normalised values."""
    rows = parsed.with_columns(rules.commodity_index()).with_columns(rule_columns(rules, present))
    for stage in normalised_columns(rules, fx, present):
        rows = rows.with_columns(stage)
    return rows


def _missing(name: str) -> pl.Expr:
    raw = pl.col(f"{name}__raw")
    return raw.is_null() | (raw.str.len_bytes() == 0)


def _text_faults(raw: pl.Expr | pl.Series, pattern: str):
    return (raw.str.len_chars() > MAX_TEXT_LENGTH) | raw.str.contains(pattern)


def _text_faults_by_distinct(values: pl.Series, pattern: str) -> pl.Series:
    distinct = values.unique()
    faulty = distinct.filter(_text_faults(distinct, pattern))
    return values.is_in(faulty.implode())


def _checks(
    rules: FeedRules,
    columns: set[str],
    present: set[str],
    now: dt.datetime,
    future_tolerance: dt.timedelta,
) -> list[tuple[str, Reason, pl.Expr, Message, bool]]:
    """(field, reason, bad-row predicate, message, applies to cancels) in order."""
    checks: list[tuple[str, Reason, pl.Expr, Message, bool]] = []
    allowed = Allowed(rules)
    for name in ALL_FIELDS:
        if wrong_type_column(name) in columns:
            checks.append(
                (
                    name,
                    Reason.BAD_TYPE,
                    pl.col(wrong_type_column(name)),
                    f"{name} has a value of the wrong type: it must be {_expected(name)}",
                    name in ("trade_id", "action", "seq"),
                )
            )
    for name in REQUIRED_FIELDS:
        checks.append(
            (name, Reason.MISSING_FIELD, _missing(name), f"{name} is required", name == "trade_id")
        )
    for name in TEXT_FIELDS:
        if name not in present:
            continue
        raw = pl.col(f"{name}__raw")
        # One pattern per field, so each value is scanned once.
        pattern = _FORMULA_START + r"|\x00"
        if name == "trade_id":
            pattern += r"|^\s|\s$"
        if name == "grade":  # kept in JSON as it is: no quotes, backslashes or controls
            pattern += r'|["\\\x00-\x1f]'
        message = (
            f"{name} has a NUL byte, surrounding spaces, a leading = + - or @, or more"
            f" than {MAX_TEXT_LENGTH} characters"
        )
        if name in PARTICIPANT_FIELDS:  # one participant, one code: " A1" is not "A1"
            pattern += r"|^\s|\s$|[\x00-\x1f\x7f-\x9f]"
        if name == "trade_id":
            bad = _text_faults(raw, pattern)
        else:  # few distinct values (codes): each is checked once
            bad = raw.map_batches(
                lambda values, p=pattern: _text_faults_by_distinct(values, p),
                return_dtype=pl.Boolean,
            )
        if name in PARTICIPANT_FIELDS:
            message = (
                f"{name} must be a participant code of 1 to {MAX_TEXT_LENGTH} characters"
                " without control characters, surrounding spaces or a leading = + - or @"
            )
        checks.append((name, Reason.BAD_TEXT, bad, message, name in ("trade_id", "action")))
    for name in ("traded_at", *FLOAT_FIELDS, "seq", AFFILIATED_FIELD):
        if name not in present:
            continue
        checks.append(
            (
                name,
                Reason.BAD_TYPE,
                ~_missing(name) & pl.col(name).is_null(),
                f"{name} is not {_expected(name)}",
                name == "seq",
            )
        )
    for name in FLOAT_FIELDS:
        if name not in present:
            continue
        checks.append(
            (name, Reason.NOT_FINITE, ~pl.col(name).is_finite(), f"{name} must be finite", False)
        )
    checks += [
        (
            "action",
            Reason.UNSUPPORTED_ACTION,
            ~pl.col("action").is_in(ACTIONS),
            f"action must be one of {', '.join(ACTIONS)}",
            True,
        ),
        (
            "commodity",
            Reason.UNKNOWN_COMMODITY,
            pl.col("commodity_id").is_null(),
            f"commodity is not in the catalogue; allowed: {', '.join(allowed.commodities())}",
            False,
        ),
        (
            "unit",
            Reason.UNIT_MISMATCH,
            pl.col("unit_factor").is_null(),
            allowed.unit,
            False,
        ),
        (
            "currency",
            Reason.CURRENCY_MISMATCH,
            ~pl.col("currency_ok").fill_null(False),
            allowed.currency,
            False,
        ),
        (
            "moisture_pct",
            Reason.MISSING_FIELD,
            pl.col("wet") & pl.col("moisture_pct").is_null(),
            "moisture_pct is required for a wet unit",
            False,
        ),
        (
            "price",
            Reason.NON_POSITIVE_PRICE,
            (pl.col("price") <= 0) & ~pl.col("allow_negative"),
            "price must be > 0",
            False,
        ),
        (
            "quantity",
            Reason.NON_POSITIVE_QUANTITY,
            pl.col("quantity") <= 0,
            "quantity must be > 0",
            False,
        ),
        (
            "quantity",
            Reason.QUANTITY_OUT_OF_BAND,
            pl.col("quantity_n") > MAX_QUANTITY,
            f"normalised quantity is above {MAX_QUANTITY:g} benchmark units",
            False,
        ),
    ]
    if "moisture_pct" in present:
        moisture = pl.col("moisture_pct")
        checks.append(
            (
                "moisture_pct",
                Reason.QUALITY_OUT_OF_RANGE,
                pl.col("wet") & ((moisture < 0) | (moisture >= 100)),
                "moisture_pct must be at least 0 and below 100 for a wet unit",
                False,
            )
        )
    for attribute, (lows, highs) in rules.ranges.items():
        if attribute not in present:
            continue
        value = pl.col(attribute)
        low = rules.per_commodity(lows, pl.Float64())
        high = rules.per_commodity(highs, pl.Float64())
        checks.append(
            (
                attribute,
                Reason.QUALITY_OUT_OF_RANGE,
                (value < low) | (value > high),
                allowed.range_of(attribute),
                False,
            )
        )
    for attribute, bases in rules.pro_rata.items():
        if attribute not in present:
            continue
        checks.append(
            (
                attribute,
                Reason.QUALITY_OUT_OF_RANGE,
                rules.per_commodity(bases, pl.Float64()).is_not_null() & (pl.col(attribute) <= 0),
                f"{attribute} must be > 0",
                False,
            )
        )
    for attribute in rules.differentials:
        if attribute not in present:
            continue
        checks.append(
            (
                attribute,
                Reason.QUALITY_OUT_OF_RANGE,
                pl.col(f"has_differential_{attribute}")
                & pl.col(attribute).is_not_null()
                & pl.col(f"differential_{attribute}").is_null(),
                allowed.differentials_of(attribute),
                False,
            )
        )
    checks += [
        (
            "price",
            Reason.PRICE_OUT_OF_BAND,
            (pl.col("price_n") < pl.col("band_low"))
            | (pl.col("price_n") > pl.col("band_high"))
            | ~pl.col("price_n").is_finite(),
            allowed.band,
            False,
        ),
        (
            "traded_at",
            Reason.FUTURE_TIMESTAMP,
            pl.col("traded_at") > pl.lit(now + future_tolerance, dtype=_UTC),
            "traded_at is in the future",
            False,
        ),
        (
            "traded_at",
            Reason.BEFORE_LISTING,
            pl.col("trade_date") < pl.col("listed_on"),
            allowed.listing,
            False,
        ),
    ]
    return checks


def validated_frame(
    feed: pl.LazyFrame,
    rules: FeedRules,
    fx: FxTable,
    *,
    now: dt.datetime,
    future_tolerance: dt.timedelta = dt.timedelta(minutes=5),
    row_offset: int = 1,
) -> pl.LazyFrame:
    """Typed, normalised rows, each with its first failing check (or nulls)."""
    present = set(feed.collect_schema().names()) & set(ALL_FIELDS)
    parsed = parsed_frame(raw_frame(feed, row_offset), present)
    columns = set(parsed.collect_schema().names())
    rows = joined_frame(parsed, rules, fx, present)
    is_cancel = pl.col("action") == "cancel"
    checks = _checks(rules, columns, present, now, future_tolerance)
    failing = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.UInt16))
    for number, (_, _, bad, _, cancels) in enumerate(checks):
        failing = failing.when(bad if cancels else bad & ~is_cancel).then(pl.lit(number, pl.UInt16))
    rows = rows.with_columns(failing.alias("check"))

    # Two `new` rows with one trade_id: the later is refused. Revisions are told apart by
    # their content later (a re-sent revision is a duplicate, not an error).
    candidate = pl.col("check").is_null() & (pl.col("action") == "new")
    duplicate = candidate & ~pl.when(candidate).then(pl.col("trade_id")).is_first_distinct()
    fields = [c[0] for c in checks] + ["trade_id"]
    codes = [c[1].value for c in checks] + [Reason.DUPLICATE_IN_BATCH.value]
    messages = [c[3] for c in checks] + ["trade_id appears earlier in the same batch"]
    check = pl.when(duplicate).then(pl.lit(len(checks), pl.UInt16)).otherwise(pl.col("check"))
    # A message per (check, commodity): the last "commodity" is none (an unknown code).
    width = len(rules.codes) + 1
    texts = [m(k) if callable(m) else m for m in messages for k in [*range(width - 1), None]]
    commodity = pl.col(COMMODITY_INDEX).fill_null(width - 1).cast(pl.UInt32)
    message = pl.col("check").cast(pl.UInt32) * width + commodity
    return rows.with_columns(check.alias("check")).with_columns(
        pl.lit(pl.Series(fields, dtype=pl.String)).gather(pl.col("check")).alias(REJECT_FIELD),
        pl.lit(pl.Series(codes, dtype=pl.String)).gather(pl.col("check")).alias(REJECT_CODE),
        pl.lit(pl.Series(texts, dtype=pl.String)).gather(message).alias(REJECT_MESSAGE),
    )
