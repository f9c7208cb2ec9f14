"""Test data for the publication API, written straight to the store (no engine involved).

Values are a deterministic function of the day, so tests can state what they expect
without computing it the way the server does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

from sqlalchemy import select

from core.methodology import in_force
from publication.vintage import Restating, publish_vintages
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


def publish_index(
    engine, code: str, values: dict[dt.date, float], *, now, status="final", version=None
):
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
            session,
            models.IndexValue,
            "index_id",
            rows,
            now=now,
            rules=Restating(version or in_force().version),
            status=status,
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
            session,
            models.Assessment,
            "commodity_id",
            rows,
            now=now,
            rules=Restating(in_force().version),
            status=status,
        )


def seed_intraday(engine, code: str, rows: int, per_day: int = 4000) -> int:
    """``rows`` vintages of one index, ``per_day`` a day (provisional, the last final), fast.

    Written with the driver's bulk path (executemany on SQLite, COPY on PostgreSQL); every
    vintage but each day's last is superseded by the next. Returns the index id.
    """
    with session_scope(engine) as session:
        key = index_id(session, code)
    start = dt.datetime(2000, 1, 3, 1, 0, tzinfo=dt.UTC)

    def generate():
        for n in range(rows):
            day_number, k = divmod(n, per_day)
            day = (start + dt.timedelta(days=day_number)).date()
            last = k == per_day - 1 or n == rows - 1
            published = start + dt.timedelta(days=day_number, seconds=k)
            superseded = None if last else published + dt.timedelta(seconds=1)
            yield (
                key,
                day,
                1000.0 + (n % 9973) / 7.0,
                "final" if last else "provisional",
                k + 1,
                "2025.1",
                "0" * 64,
                published,
                superseded,
            )

    columns = (
        "index_id, date, value, status, vintage, methodology_version, inputs_hash, "
        "published_at, superseded_at"
    )
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":

            def as_text(row):
                return (
                    *row[:7],
                    row[7].strftime("%Y-%m-%d %H:%M:%S.%f"),
                    row[8].strftime("%Y-%m-%d %H:%M:%S.%f") if row[8] else None,
                )

            cursor = raw.cursor()
            cursor.execute("BEGIN")
            cursor.executemany(
                f"INSERT INTO index_values ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (as_text(row) for row in generate()),
            )
            cursor.execute("COMMIT")
        else:
            statement = f"COPY index_values ({columns}) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row in generate():
                    copy.write_row(row)
            raw.commit()
    finally:
        raw.close()
    with session_scope(engine) as session:
        from publication.vintage import bump_publication_version

        bump_publication_version(session, dt.datetime.now(dt.UTC))
    return key
