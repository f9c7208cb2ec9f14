"""Intraday: provisional assessments and index values from the trades so far, and the
day's open/high/low/close of every index.

The scheduler calls :func:`publish_provisional` every ``intraday.interval_seconds``. Its
trading day is the one whose window holds ``now`` (after the cut-off, the next trading
day). Once the fixing has published a day's final values, provisional runs leave it alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit.journal import journal_computation
from bcpi.errors import InvalidInput
from index import store_io
from index.methodology import Methodology
from index.publish import PublishCounts
from index.service import Engine, assess, publish_index_values
from index.windows import Calendar, close_instant, step_trading_day
from store import models
from store.models_methodology import IndexDailyOHLC, IntradayIndexValue
from store.upsert import insert_ignoring_conflicts


@dataclass
class IntradayReport:
    observed_at: dt.datetime
    day: dt.date
    trades: int = 0
    assessments: PublishCounts = field(default_factory=PublishCounts)
    index_values: PublishCounts = field(default_factory=PublishCounts)
    skipped: dict[str, str] = field(default_factory=dict)
    fallbacks: dict[str, int] = field(default_factory=dict)
    fixed: bool = False
    """The day's final values are already published: nothing provisional was computed."""
    observations: int = 0


def window_day(engine: Engine, now: dt.datetime) -> dt.date:
    """The trading day whose assessment window holds ``now``."""
    zone = engine.zone
    local = now.astimezone(zone).date()
    day = (
        local
        if engine.calendar.is_trading_day(local)
        else step_trading_day(engine.calendar, local, 1)
    )
    if now > close_instant(day, engine.methodology.assessment.cutoff, zone):
        day = step_trading_day(engine.calendar, day, 1)
    return day


def publish_provisional(
    session: Session,
    now: dt.datetime,
    *,
    methodology: Methodology | None = None,
    calendar: Calendar | None = None,
) -> IntradayReport:
    """Assess today's window up to ``now`` and publish provisional index values.

    Each run also records every index's value at ``now`` and updates the day's OHLC.
    """
    if now.tzinfo is None:
        raise InvalidInput("now", "must be timezone-aware")
    engine = Engine.load(session, methodology, calendar)
    day = window_day(engine, now)
    journal_computation(
        session, "provisional", day, day, now, engine.methodology.version, engine.calendar
    )
    report = IntradayReport(observed_at=now, day=day)
    fixed = session.scalar(
        select(models.IndexValue.id)
        .where(
            models.IndexValue.date == day,
            models.IndexValue.superseded_at.is_(None),
            models.IndexValue.status.in_(store_io.FIXED),
        )
        .limit(1)
    )
    if fixed is not None:
        report.fixed = True
        return report
    assess(session, engine, [day], now, report, status="provisional", until=now, skip_fixed=True)
    rows = publish_index_values(
        session,
        engine,
        day,
        now,
        report,
        status="provisional",
        only_day=day,
        include_provisional=True,
    )
    _observe(session, day, now, rows)
    report.observations = len(rows)
    return report


def _observe(session: Session, day: dt.date, now: dt.datetime, rows: list[dict]) -> None:
    if not rows:
        return
    insert_ignoring_conflicts(
        session,
        IntradayIndexValue.__table__,
        [
            {"index_id": r["index_id"], "date": day, "observed_at": now, "value": r["value"]}
            for r in rows
        ],
        ["index_id", "observed_at"],
    )
    existing = {
        o.index_id: o
        for o in session.scalars(select(IndexDailyOHLC).where(IndexDailyOHLC.date == day))
    }
    inserts = []
    for row in rows:
        value = row["value"]
        current = existing.get(row["index_id"])
        if current is None:
            inserts.append(
                {
                    "index_id": row["index_id"],
                    "date": day,
                    "open": value,
                    "high": value,
                    "low": value,
                    "close": value,
                    "observations": 1,
                    "status": "provisional",
                    "updated_at": now,
                }
            )
        elif current.status == "provisional":
            session.execute(
                update(IndexDailyOHLC)
                .where(IndexDailyOHLC.id == current.id)
                .values(
                    high=max(current.high, value),
                    low=min(current.low, value),
                    close=value,
                    observations=current.observations + 1,
                    updated_at=now,
                )
            )
    if inserts:
        session.execute(IndexDailyOHLC.__table__.insert(), inserts)


def daily_ohlc(
    session: Session, index_id: int, start: dt.date, end: dt.date
) -> list[IndexDailyOHLC]:
    """The index's daily open/high/low/close from ``start`` to ``end``, both inclusive."""
    return list(
        session.scalars(
            select(IndexDailyOHLC)
            .where(
                IndexDailyOHLC.index_id == index_id,
                IndexDailyOHLC.date >= start,
                IndexDailyOHLC.date <= end,
            )
            .order_by(IndexDailyOHLC.date)
        )
    )
