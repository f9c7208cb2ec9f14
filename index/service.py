"""Compute and publish assessments and every index for a range of Beijing trading days.

The demo, the CLI and the scheduled fixing all call :func:`compute`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from bcpi.errors import InvalidRange
from index.assessment import daily_assessments
from index.chain import chain_link
from index.methodology import BEIJING_UTC_OFFSET_MS
from index.publish import PublishCounts, publish_vintages
from store import models

BEIJING = dt.timezone(dt.timedelta(milliseconds=BEIJING_UTC_OFFSET_MS))


@dataclass
class ComputeReport:
    start: dt.date
    end: dt.date
    trades: int = 0
    assessments: PublishCounts = field(default_factory=PublishCounts)
    index_values: PublishCounts = field(default_factory=PublishCounts)
    skipped: dict[str, str] = field(default_factory=dict)


def _day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    begin = dt.datetime.combine(start, dt.time(), BEIJING)
    stop = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), BEIJING)
    return begin, stop


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for array in arrays:
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def assess(session: Session, start: dt.date, end: dt.date, now: dt.datetime, report) -> None:
    begin, stop = _day_bounds(start, end)
    trades = session.execute(
        select(
            models.Trade.id,
            models.Trade.commodity_id,
            models.Trade.exchange_id,
            models.Trade.traded_at,
            models.Trade.price,
            models.Trade.quantity,
        ).where(
            models.Trade.status == "active",
            models.Trade.traded_at >= begin,
            models.Trade.traded_at < stop,
        )
    ).all()
    report.trades = len(trades)
    if not trades:
        return
    ids, commodity, exchange, traded_at, price, quantity = zip(*trades, strict=True)
    instants = np.array([round(t.timestamp() * 1000) for t in traded_at], dtype=np.int64)
    result = daily_assessments(
        commodity, instants, price, quantity, exchange, utc_offset_ms=BEIJING_UTC_OFFSET_MS
    )
    ids = np.asarray(ids, dtype=np.int64)[result.order]
    prices = np.asarray(price, dtype=np.float64)[result.order]
    quantities = np.asarray(quantity, dtype=np.float64)[result.order]
    rows = []
    for g in range(result.vwap.size):
        window = slice(result.first[g], result.stop[g])
        rows.append(
            {
                "commodity_id": int(result.commodity_id[g]),
                "date": result.day[g].item(),
                "price": float(result.vwap[g]),
                "trades": int(result.trades[g]),
                "volume": float(result.volume[g]),
                "high": float(result.high[g]),
                "low": float(result.low[g]),
                "exchanges": int(result.exchanges[g]),
                "fallback": "none",
                "inputs_hash": _digest(ids[window], prices[window], quantities[window]),
            }
        )
    report.assessments = publish_vintages(session, models.Assessment, "commodity_id", rows, now=now)


def _current_assessments(session: Session, since: dt.date) -> dict[int, dict[dt.date, float]]:
    out: dict[int, dict[dt.date, float]] = {}
    for commodity_id, day, price in session.execute(
        select(models.Assessment.commodity_id, models.Assessment.date, models.Assessment.price)
        .where(models.Assessment.superseded_at.is_(None), models.Assessment.date >= since)
        .order_by(models.Assessment.date)
    ):
        out.setdefault(commodity_id, {})[day] = price
    return out


def _constituents(session: Session) -> dict[int, list[tuple[int, float]]]:
    """Index id → [(commodity id, weight)] of the latest weight set (fixed weights)."""
    latest: dict[int, dt.date] = {}
    rows = session.execute(select(models.IndexConstituent)).scalars().all()
    for row in rows:
        latest[row.index_id] = max(latest.get(row.index_id, row.effective_from), row.effective_from)
    out: dict[int, list[tuple[int, float]]] = {}
    for row in sorted(rows, key=lambda r: r.commodity_id):
        if row.effective_from == latest[row.index_id]:
            out.setdefault(row.index_id, []).append((row.commodity_id, row.weight))
    return out


def index_levels(session: Session, publish_from: dt.date, now: dt.datetime, report) -> None:
    definitions = session.scalars(
        select(models.IndexDefinition).order_by(models.IndexDefinition.id)
    ).all()
    if not definitions:
        return
    assessments = _current_assessments(session, min(d.base_date for d in definitions))
    codes = dict(session.execute(select(models.Commodity.id, models.Commodity.code)).all())
    constituents = _constituents(session)
    rows = []
    for definition in definitions:
        members = constituents.get(definition.id, [])
        commodity_ids = [c for c, _ in members]
        if not members:
            report.skipped[definition.code] = "no constituents"
            continue
        missing = [c for c in commodity_ids if definition.base_date not in assessments.get(c, {})]
        if missing:
            report.skipped[definition.code] = (
                f"no assessment on the base date {definition.base_date} for commodity ids {missing}"
            )
            continue
        days = sorted(
            {d for c in commodity_ids for d in assessments[c] if d >= definition.base_date}
        )
        prices = np.full((len(days), len(members)), np.nan)
        for column, commodity_id in enumerate(commodity_ids):
            series = assessments[commodity_id]
            base = series[definition.base_date]
            for row_number, day in enumerate(days):
                if day in series:
                    prices[row_number, column] = series[day] / base * definition.base_value
        weights = np.array([w for _, w in members])
        chained = chain_link(
            np.array(days, dtype="datetime64[D]"),
            prices,
            weights,
            np.datetime64(definition.base_date, "D"),
            definition.base_value,
        )
        for row_number, day in enumerate(days):
            if day < publish_from:
                continue
            reference = int(chained.reference_rows[row_number])
            rationale = {
                "formula": "chain_linked_laspeyres",
                "reference_date": days[reference].isoformat(),
                "reference_value": float(chained.values[reference]),
                "constituents": [
                    {
                        "code": codes[commodity_id],
                        "weight": float(weights[column]),
                        "level": float(chained.levels[row_number, column]),
                        "reference_level": float(chained.levels[reference, column]),
                    }
                    for column, commodity_id in enumerate(commodity_ids)
                ],
            }
            value = float(chained.values[row_number])
            rows.append(
                {
                    "index_id": definition.id,
                    "date": day,
                    "value": value,
                    "rationale": rationale,
                    "inputs_hash": _digest(
                        chained.levels[row_number],
                        chained.levels[reference],
                        weights,
                        chained.values[row_number : row_number + 1],
                    ),
                }
            )
    report.index_values = publish_vintages(session, models.IndexValue, "index_id", rows, now=now)


def compute(
    session: Session, start: dt.date, end: dt.date, *, now: dt.datetime | None = None
) -> ComputeReport:
    """Assess every commodity for ``start``..``end``; publish index values from ``start`` on."""
    if end < start:
        raise InvalidRange(f"end {end} is before start {start}", start=start, end=end)
    now = now or dt.datetime.now(dt.UTC)
    report = ComputeReport(start=start, end=end)
    assess(session, start, end, now, report)
    index_levels(session, start, now, report)
    return report
