"""A commodity joins published indices from a stated date (``joins_on``) by chain-linking:
no level jump, the composite's other weights scaled by (1 − its weight), its sector's
weights re-normalised.

The small world of tests/test_composite.py (TEST = 0.6 REBAR + 0.4 COTTON, TEST-FER =
REBAR, published for 30 and 31 Dec 2025). Coal joins the ferrous sector on 5 Jan 2026
with weight 0.2, traded at 800 on 31 Dec, 840 on 5 Jan and 820 on 6 Jan. By hand, linked
at 31 Dec (TEST 1020, TEST-FER 1100):
  TEST 5 Jan = 1020 × (0.48 × 1210/1100 + 0.32 × 900/900 + 0.2 × 840/800)
  TEST-FER 5 Jan = 1100 × (0.48/0.68 × 1210/1100 + 0.2/0.68 × 840/800)
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.calendar import Calendar
from core.errors import ReferenceDataConflict
from ingest.files import ingest_file
from publication.fixing import compute
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import ensure_exchange
from tests.methodology_support import split_world
from tests.test_composite import FEED, RELAXED, SMALL_WORLD

JOIN = dt.date(2026, 1, 5)
COAL = """
[[commodities]]
code = "COAL"
name_en = "Thermal coal"
name_zh = "动力煤"
sector = "ferrous"
unit = "t"
currency = "CNY"
weight = 0.2
joins_on = {day}
listed_on = 2020-01-01
price_band = [100.0, 3000.0]
spec = {{ description = "coal" }}
"""
COAL_TRADES = [
    "K1,COAL,2025-12-31T10:00:00+08:00,800,100,CNY,t",
    "K2,COAL,2026-01-05T10:00:00+08:00,840,100,CNY,t",
    "K3,COAL,2026-01-06T10:00:00+08:00,820,100,CNY,t",
]


def with_coal(day: dt.date):
    catalogue, methodology = split_world(SMALL_WORLD + COAL.format(day=day), RELAXED)
    return catalogue, methodology.model_copy(update={"effective_from": day})


def values(engine, code: str) -> dict[dt.date, models.IndexValue]:
    with session_scope(engine) as session:
        return {
            v.date: v
            for v in session.scalars(
                select(models.IndexValue)
                .join(models.IndexDefinition)
                .where(
                    models.IndexDefinition.code == code, models.IndexValue.superseded_at.is_(None)
                )
            )
        }


def feed(engine, catalogue, calendar, tmp_path, rows, name):
    path = tmp_path / name
    path.write_text("\n".join([FEED[0], *rows]) + "\n")
    with session_scope(engine) as session:
        ensure_exchange(session, "X")
    with session_scope(engine) as session:
        assert ingest_file(session, catalogue, path, "X", calendar=calendar).rejected == 0


@pytest.fixture
def published(database_url, tmp_path):
    """The world without coal, published for 30 and 31 Dec."""
    catalogue, before = split_world(SMALL_WORLD, RELAXED)
    engine = make_engine(database_url)
    prepare_database(engine, catalogue, before)
    feed(engine, catalogue, Calendar(before), tmp_path, FEED[1:], "feed.csv")
    with session_scope(engine) as session:
        compute(session, dt.date(2025, 12, 30), dt.date(2025, 12, 31), calendar=Calendar(before))
    yield engine
    engine.dispose()


def test_a_commodity_joins_without_a_level_jump(published, tmp_path):
    engine = published
    catalogue, after = with_coal(JOIN)
    prepare_database(engine, catalogue, after)
    feed(engine, catalogue, Calendar(after), tmp_path, COAL_TRADES, "coal.csv")
    with session_scope(engine) as session:
        report = compute(
            session, dt.date(2025, 12, 30), dt.date(2026, 1, 6), calendar=Calendar(after)
        )
    assert report.corrections == [] and report.index_values.restated == 0

    test, ferrous, coal = (values(engine, c) for c in ("TEST", "TEST-FER", "COAL"))
    assert test[dt.date(2025, 12, 31)].vintage == 1 and test[dt.date(2025, 12, 31)].value == 1020
    assert test[JOIN].value == pytest.approx(
        1020 * (0.48 * 1210 / 1100 + 0.32 * 900 / 900 + 0.2 * 840 / 800), rel=1e-12
    )
    assert test[dt.date(2026, 1, 6)].value == pytest.approx(
        1020 * (0.48 * 1100 / 1100 + 0.32 * 1080 / 900 + 0.2 * 820 / 800), rel=1e-12
    )
    assert ferrous[JOIN].value == pytest.approx(
        1100 * (0.48 / 0.68 * 1210 / 1100 + 0.2 / 0.68 * 840 / 800), rel=1e-12
    )
    # The join period is linked to 31 Dec: its constant is the value published then.
    why = test[JOIN].rationale
    assert why["reference_date"] == "2025-12-31" and why["normalising_constant"] == 1020
    weights = {m["code"]: m["weight"] for m in why["constituents"]}
    assert weights == pytest.approx({"REBAR": 0.48, "COTTON": 0.32, "COAL": 0.2}, rel=1e-12)
    coal_member = next(m for m in why["constituents"] if m["code"] == "COAL")
    assert coal_member["base_date"] == "2025-12-31" and coal_member["reference_level"] == 1000
    assert [m["code"] for m in test[dt.date(2025, 12, 31)].rationale["constituents"]] == [
        "REBAR",
        "COTTON",
    ]
    assert {d: v.value for d, v in coal.items()} == pytest.approx(
        {dt.date(2025, 12, 31): 1000.0, JOIN: 1050.0, dt.date(2026, 1, 6): 1025.0}
    )


def test_joining_on_a_published_day_is_refused(published):
    catalogue, after = with_coal(dt.date(2025, 12, 31))
    with pytest.raises(ReferenceDataConflict) as info:
        prepare_database(published, catalogue, after.model_copy(update={"effective_from": JOIN}))
    assert "the day COAL joins" in info.value.message and "TEST" in info.value.message
