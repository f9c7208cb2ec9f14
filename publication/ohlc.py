"""Each index's day as open, high, low and close: its intraday values, closed by its fixing.

The one place that keeps ``index_daily_ohlc``: intraday runs observe values (provisional
OHLC), the fixing closes the day (final OHLC).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from store.models import WITHDRAWN, IndexDailyOHLC, IntradayIndexValue
from store.upsert import insert_ignoring_conflicts


def close_days(session: Session, rows: list[dict], now: dt.datetime) -> None:
    """Daily OHLC of every published final value: its intraday values, closed by the fixing."""
    if not rows:
        return
    days = [r["date"] for r in rows]
    first, last = min(days), max(days)
    ticks: dict[tuple[int, dt.date], list[float]] = defaultdict(list)
    for index_id, day, value in session.execute(
        select(IntradayIndexValue.index_id, IntradayIndexValue.date, IntradayIndexValue.value)
        .where(IntradayIndexValue.date >= first, IntradayIndexValue.date <= last)
        .order_by(IntradayIndexValue.observed_at)
    ):
        ticks[(index_id, day)].append(value)
    existing = {
        (o.index_id, o.date): o
        for o in session.scalars(
            select(IndexDailyOHLC).where(IndexDailyOHLC.date >= first, IndexDailyOHLC.date <= last)
        )
    }
    inserts, updates = [], []
    for row in rows:
        key = (row["index_id"], row["date"])
        observed = ticks.get(key, [])
        close = row["value"]
        values = {
            "open": observed[0] if observed else close,
            "high": max([*observed, close]),
            "low": min([*observed, close]),
            "close": close,
            "observations": len(observed),
            "status": "final",
        }
        current = existing.get(key)
        if current is None:
            inserts.append({"index_id": key[0], "date": key[1], "updated_at": now, **values})
        elif any(getattr(current, k) != v for k, v in values.items()):
            updates.append({"row_id": current.id, "updated_at": now, **values})
    if updates:
        table = IndexDailyOHLC.__table__
        names = [name for name in updates[0] if name != "row_id"]
        session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({name: bindparam(name) for name in names}),
            updates,
        )
        for current in existing.values():  # their rows changed beneath them
            session.expire(current)
    if inserts:
        session.execute(IndexDailyOHLC.__table__.insert(), inserts)


def observe(session: Session, day: dt.date, now: dt.datetime, rows: list[dict]) -> None:
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


def withdraw_days(session: Session, days: list[dt.date], now: dt.datetime) -> None:
    """Days that are no longer publication days keep their OHLC row, marked withdrawn."""
    if days:
        session.execute(
            update(IndexDailyOHLC)
            .where(IndexDailyOHLC.date.in_(days))
            .values(status=WITHDRAWN, updated_at=now)
        )


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
                IndexDailyOHLC.status != WITHDRAWN,
            )
            .order_by(IndexDailyOHLC.date)
        )
    )
