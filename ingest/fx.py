"""The daily FX table: loading it, reading it for normalisation, releasing held trades.

The file is CSV with the header ``date,currency,cny_per_unit``: how many CNY one unit of
``currency`` was worth on ``date`` (the Beijing trading day), e.g. ``2025-03-03,USD,7.2834``.
CNY itself is 1 and is not listed. Loading is all or nothing: a malformed row, or a rate
that contradicts one already stored, refuses the whole file. Trades held for a missing
rate are released (normalised and made active) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.catalogue import Catalogue
from core.errors import IngestError
from core.fields import QUALITY_FIELDS, HoldReason, TradeStatus
from ingest.marks import mark_published_days
from ingest.rules import FeedRules, FxTable, feed_rules
from ingest.validate import joined_frame
from store import models
from store.models import FxRate

FX_COLUMNS = ("date", "currency", "cny_per_unit")


@dataclass
class FxLoadResult:
    inserted: int
    unchanged: int
    released: int


def fx_table(session: Session) -> FxTable:
    return FxTable.from_rows(
        session.execute(select(FxRate.date, FxRate.currency, FxRate.cny_per_unit)).all()
    )


def parse_fx_file(path: Path) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file", path=str(path))
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise IngestError(f"{path.name}: cannot be read as CSV: {exc}", path=str(path)) from exc
    missing = [c for c in FX_COLUMNS if c not in raw.columns]
    if missing:
        raise IngestError(
            f"{path.name}: missing column(s) {missing}; the header is {','.join(FX_COLUMNS)}",
            path=str(path),
        )
    rates = raw.select(
        pl.int_range(2, pl.len() + 2).alias("line"),
        pl.col("date").str.strip_chars().str.to_date("%Y-%m-%d", strict=False).alias("date"),
        pl.col("currency").str.strip_chars().str.to_uppercase().alias("currency"),
        pl.col("cny_per_unit").str.strip_chars().cast(pl.Float64, strict=False),
    )
    bad = rates.filter(
        pl.col("date").is_null()
        | ~pl.col("currency").fill_null("").str.contains(r"^[A-Z]{3}$")
        | (pl.col("currency") == "CNY")
        | pl.col("cny_per_unit").is_null()
        | ~pl.col("cny_per_unit").is_finite()
        | (pl.col("cny_per_unit") <= 0)
    )
    if bad.height:
        lines = ", ".join(str(n) for n in bad["line"].head(10))
        raise IngestError(
            f"{path.name}: {bad.height} bad row(s) (lines {lines}); each needs an ISO date, a"
            " three-letter currency other than CNY and a positive finite cny_per_unit",
            path=str(path),
        )
    twice = rates.filter(pl.struct("date", "currency").is_duplicated())
    if twice.height:
        raise IngestError(
            f"{path.name}: a (date, currency) appears twice (lines "
            f"{', '.join(str(n) for n in twice['line'].head(10))})",
            path=str(path),
        )
    return rates.drop("line")


def load_fx(
    session: Session,
    catalogue: Catalogue,
    path: Path,
    *,
    calendar: Calendar,
    now: dt.datetime | None = None,
) -> FxLoadResult:
    now = now or dt.datetime.now(dt.UTC)
    rates = parse_fx_file(path)
    stored = {
        (r.date, r.currency): r.cny_per_unit
        for r in session.scalars(
            select(FxRate).where(FxRate.currency.in_(rates["currency"].unique().to_list()))
        )
    }
    new, unchanged, conflicts = [], 0, []
    for day, currency, rate in rates.iter_rows():
        known = stored.get((day, currency))
        if known is None:
            new.append(
                FxRate(
                    date=day,
                    currency=currency,
                    cny_per_unit=rate,
                    source=Path(path).name,
                    loaded_at=now,
                )
            )
        elif known == rate:
            unchanged += 1
        else:
            conflicts.append(f"{day} {currency}: stored {known}, file {rate}")
    if conflicts:
        raise IngestError(
            f"{Path(path).name}: {len(conflicts)} rate(s) differ from the stored ones (a published"
            f" rate is never silently replaced): {'; '.join(conflicts[:5])}",
            path=str(path),
        )
    session.add_all(new)
    session.flush()
    released = release_held_trades(session, feed_rules(session, catalogue, calendar), now=now)
    return FxLoadResult(len(new), unchanged, released)


def release_held_trades(session: Session, rules: FeedRules, *, now: dt.datetime) -> int:
    """Normalise trades held for a missing FX rate whose rate is now known; make them active.

    A released trade whose normalised price falls outside the sanity band stays held
    with the reason ``price_out_of_band`` for review. Each release into a day already
    published marks that day for restatement (``late_trade``).
    """
    held = session.execute(
        select(
            models.Trade.id,
            models.Trade.commodity_id,
            models.Trade.traded_at,
            models.Trade.price_raw,
            models.Trade.quantity_raw,
            models.Trade.currency_raw,
            models.Trade.unit_raw,
            models.Trade.attributes,
        ).where(
            models.Trade.status == TradeStatus.HELD.value,
            models.Trade.hold_reason == HoldReason.FX_RATE_MISSING.value,
        )
    ).all()
    if not held:
        return 0
    codes = {i: c for c, i in rules.ids.items()}
    frame = pl.DataFrame(
        {
            "id": [r.id for r in held],
            "commodity": [codes.get(r.commodity_id) for r in held],
            "traded_at": [r.traded_at for r in held],
            "price": [r.price_raw for r in held],
            "quantity": [r.quantity_raw for r in held],
            "currency": [r.currency_raw for r in held],
            "unit": [r.unit_raw for r in held],
            **{name: [(r.attributes or {}).get(name) for r in held] for name in QUALITY_FIELDS},
        },
        schema={
            "id": pl.Int64,
            "commodity": pl.String,
            "traded_at": pl.Datetime("us", "UTC"),
            "price": pl.Float64,
            "quantity": pl.Float64,
            "currency": pl.String,
            "unit": pl.String,
            **QUALITY_FIELDS,
        },
    )
    done = (
        joined_frame(frame.lazy(), rules, fx_table(session), set(frame.columns))
        .filter(~pl.col("held"))
        .select(
            "id",
            "commodity_id",
            "window_day",
            "price_n",
            "adjustments",
            (
                (pl.col("price_n") < pl.col("band_low"))
                | (pl.col("price_n") > pl.col("band_high"))
                | ~pl.col("price_n").is_finite()
            ).alias("out_of_band"),
        )
        .collect()
    )
    for row in done.iter_rows(named=True):
        values = {"price": row["price_n"], "adjustments": _json(row["adjustments"])}
        if row["out_of_band"]:
            values.update(hold_reason="price_out_of_band")
        else:
            values.update(status=TradeStatus.ACTIVE.value, hold_reason=None)
        session.execute(update(models.Trade).where(models.Trade.id == row["id"]).values(**values))
    released = done.filter(~pl.col("out_of_band"))
    mark_published_days(
        session,
        {
            (c, d, "late_trade", "held trade released by a new FX rate")
            for c, d in released.select("commodity_id", "window_day").rows()
        },
        now=now,
    )
    return released.height


def _json(text: str | None) -> dict | None:
    return json.loads(text) if text else None
