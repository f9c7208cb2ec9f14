"""The standing series (one row per index or commodity, kept by the publishing transaction)
answers exactly what the vintages say stands now.

The reference is a plain SQL query over the vintages: not superseded, not withdrawn, in
date order. Histories are random mixes of first publications, restatements, provisional
values made final and withdrawals, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
import threading

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import insert, text

from api.series import SeriesSpec
from api.stored_values import read_partitions
from core.methodology import in_force
from publication.vintage import Restating, publish_vintages, withdraw_vintages
from store import models
from store.db import session_scope
from store.standing import schema, standing, values_schema
from tests.publication_data import commodity_id, digest, index_id, weekdays

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAYS = weekdays(dt.date(2025, 1, 1), 120)

REFERENCE = {
    "index": """
        SELECT date, value, status, flags, vintage FROM index_values
        WHERE index_id = :key AND superseded_at IS NULL AND status <> 'withdrawn'
        ORDER BY date""",
    "assessment": """
        SELECT date, price, status, trades, volume, high, low, fallback, flags, vintage
        FROM assessments
        WHERE commodity_id = :key AND superseded_at IS NULL AND status <> 'withdrawn'
        ORDER BY date""",
}


def _reference(engine, kind: str, key: int) -> pl.DataFrame:
    with engine.connect() as connection:
        rows = connection.execute(text(REFERENCE[kind]), {"key": key}).all()
    frame = pl.DataFrame(rows, schema=list(schema(kind)), orient="row")
    return frame.with_columns(
        pl.col("date").cast(pl.String).str.to_date() if frame["date"].dtype == pl.String else []
    ).cast(schema(kind))


def _served(engine, kind: str, key: int, **spec) -> pl.DataFrame:
    with engine.connect() as connection:
        parts = list(
            read_partitions(
                connection,
                SeriesSpec(kind=kind, key_id=key, **spec),
                descending=spec.get("order") == "desc",
                rows=37,
            )
        )
    return pl.concat(parts) if parts else pl.DataFrame(schema=values_schema(kind))


def _rules() -> Restating:
    return Restating(in_force().version)


def _index_rows(key: int, days, rng: random.Random) -> list[dict]:
    return [
        {
            "index_id": key,
            "date": day,
            "value": round(rng.uniform(900, 1100), 6),
            "rationale": None,
            "inputs_hash": digest("I", day, rng.random()),
        }
        for day in days
    ]


def _assessment_rows(key: int, days, rng: random.Random) -> list[dict]:
    rows = []
    for day in days:
        price = round(rng.uniform(400, 600), 4)
        suspended = rng.random() < 0.1
        rows.append(
            {
                "commodity_id": key,
                "date": day,
                "price": None if suspended else price,
                "trades": rng.randrange(0, 40),
                "volume": float(rng.randrange(0, 5000)),
                "high": None if suspended else price + 1,
                "low": None if suspended else price - 1,
                "exchanges": 1,
                "fallback": "suspended" if suspended else rng.choice(["none", "stale"]),
                "rationale": None,
                "inputs_hash": digest("A", day, rng.random()),
            }
        )
    return rows


def _history(engine, kind: str, key: int, seed: int) -> None:
    """A random history of one index or commodity, one transaction per step."""
    rng = random.Random(seed)
    model, column, make = (
        (models.IndexValue, "index_id", _index_rows)
        if kind == "index"
        else (models.Assessment, "commodity_id", _assessment_rows)
    )
    for step in range(12):
        now = NOW + dt.timedelta(minutes=step)
        with session_scope(engine) as session:
            if step and rng.random() < 0.25:
                withdraw_vintages(
                    session, model, column, rng.sample(DAYS, 3), now=now, rules=_rules()
                )
                continue
            days = sorted(rng.sample(DAYS, rng.randrange(1, 40)))
            publish_vintages(
                session,
                model,
                column,
                make(key, days, rng),
                now=now,
                rules=_rules(),
                status=rng.choice(["final", "final", "provisional"]),
            )


@pytest.mark.parametrize("kind", ["index", "assessment"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_standing_series_is_what_the_vintages_say(engine, kind, seed):
    with session_scope(engine) as session:
        key = index_id(session, "BCPI") if kind == "index" else commodity_id(session, "IRONORE")
    _history(engine, kind, key, seed)
    expected = _reference(engine, kind, key)
    assert expected.height > 0
    with engine.connect() as connection:
        kept = standing(connection, kind, key)
    assert kept is not None, "the publishing transactions kept no standing series"
    assert_frame_equal(kept, expected)
    values = expected.drop("vintage")
    assert_frame_equal(_served(engine, kind, key), values)
    assert_frame_equal(_served(engine, kind, key, order="desc"), values.reverse())
    start, end = DAYS[10], DAYS[70]
    in_range = values.filter(pl.col("date").is_between(start, end))
    assert_frame_equal(_served(engine, kind, key, start=start, end=end), in_range)


def test_a_vintage_written_another_way_is_still_served(engine):
    """A vintage that did not go through publication leaves the standing series behind;
    the answer then comes from the vintages themselves."""
    with session_scope(engine) as session:
        key = index_id(session, "BCPI")
    _history(engine, "index", key, seed=4)
    with session_scope(engine) as session:
        session.execute(
            insert(models.IndexValue),
            [
                {
                    "index_id": key,
                    "date": dt.date(2030, 1, 2),
                    "value": 1234.5,
                    "status": "final",
                    "vintage": 1,
                    "methodology_version": in_force().version,
                    "inputs_hash": "x",
                    "published_at": NOW,
                }
            ],
        )
    with engine.connect() as connection:
        assert standing(connection, "index", key) is None
    served = _served(engine, "index", key)
    assert served["date"][-1] == dt.date(2030, 1, 2) and served["value"][-1] == 1234.5
    assert_frame_equal(served, _reference(engine, "index", key).drop("vintage"))
    # The next publication takes it in.
    with session_scope(engine) as session:
        publish_vintages(
            session,
            models.IndexValue,
            "index_id",
            _index_rows(key, DAYS[:2], random.Random(9)),
            now=NOW + dt.timedelta(hours=1),
            rules=_rules(),
        )
    with engine.connect() as connection:
        kept = standing(connection, "index", key)
    assert kept is not None
    assert_frame_equal(kept, _reference(engine, "index", key))


@pytest.mark.postgres
def test_concurrent_publishers_each_take_in_the_other(postgres_url, catalogue):
    """Two transactions publishing the same index at once: the standing series holds both."""
    from store.bootstrap import prepare_database
    from store.db import make_engine

    engine = make_engine(postgres_url)
    prepare_database(engine, catalogue)
    with session_scope(engine) as session:
        key = index_id(session, "BCPI")
    barrier = threading.Barrier(2)
    failures = []

    def publish(days, seed):
        try:
            rows = _index_rows(key, days, random.Random(seed))
            with session_scope(engine) as session:
                session.execute(text("SELECT 1"))
                barrier.wait(timeout=10)
                publish_vintages(
                    session, models.IndexValue, "index_id", rows, now=NOW, rules=_rules()
                )
        except Exception as exc:
            failures.append(exc)

    for round_ in range(5):
        days = DAYS[round_ * 20 : round_ * 20 + 20]
        threads = [
            threading.Thread(target=publish, args=(days[:10], round_)),
            threading.Thread(target=publish, args=(days[10:], round_ + 100)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    engine.dispose()
    assert not failures
    engine = make_engine(postgres_url)
    with engine.connect() as connection:
        kept = standing(connection, "index", key)
    expected = _reference(engine, "index", key)
    engine.dispose()
    assert expected.height == 100
    assert kept is not None
    assert_frame_equal(kept, expected)
