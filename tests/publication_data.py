"""Test data for the publication API, written straight to the store (no engine involved).

Values are a deterministic function of the day, so tests can state what they expect
without computing it the way the server does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

from sqlalchemy import select

from index.publish import publish_vintages
from store import models
from store.db import session_scope

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def weekdays(start: dt.date, count: int) -> list[dt.date]:
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def level(day: dt.date) -> float:
    """A positive, wiggly value for each day."""
    n = day.toordinal()
    return 1000.0 + 120.0 * math.sin(n / 37.0) + 35.0 * math.cos(n / 5.3) + (n % 11) * 0.731


def digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def index_id(session, code: str) -> int:
    return session.scalar(
        select(models.IndexDefinition.id).where(models.IndexDefinition.code == code)
    )


def commodity_id(session, code: str) -> int:
    return session.scalar(select(models.Commodity.id).where(models.Commodity.code == code))


def publish_index(engine, code: str, values: dict[dt.date, float], *, now, status="final"):
    with session_scope(engine) as session:
        key = index_id(session, code)
        rows = [
            {
                "index_id": key,
                "date": day,
                "value": value,
                "rationale": None,
                "inputs_hash": digest(code, day, value),
            }
            for day, value in values.items()
        ]
        return publish_vintages(
            session, models.IndexValue, "index_id", rows, now=now, status=status
        )


def publish_assessments(engine, code: str, points: list[dict], *, now, status="final"):
    """``points``: dicts with date, price, trades, volume, high, low, fallback."""
    with session_scope(engine) as session:
        key = commodity_id(session, code)
        rows = [
            {
                "commodity_id": key,
                "exchanges": 1,
                "rationale": None,
                "inputs_hash": digest(code, point["date"], point["price"]),
                **point,
            }
            for point in points
        ]
        return publish_vintages(
            session, models.Assessment, "commodity_id", rows, now=now, status=status
        )
