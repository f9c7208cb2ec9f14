"""A version governs the days from its effective date on. Adopted by force in the middle of
published history, it restates those days under itself (notices ``methodology_change``,
forced outside the correction window) and leaves every earlier day as published.

The small world of tests/test_composite.py: cotton trades 1 t at VWAP − 6 and 2 t at VWAP + 3
each day (VWAP 15 × B). The new version sets cotton's minimum lot to 1.5 t, so from 5 Jan
only the 2 t trade qualifies: cotton 13 503 on 5 Jan (was 13 500) and 16 203 on 6 Jan (was
16 200); with the base 15 000 and the 31 Dec link at 13 500, TEST on 5 Jan is
1020 × (0.6 × 1210/1100 + 0.4 × 13 503/13 500).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.calendar import Calendar
from core.methodology import CommodityOverride, Version, registry
from ingest.files import ingest_file
from publication.adoption import adopt
from publication.fixing import compute
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.operator_log import Operator
from store.reference import ensure_exchange
from tests.test_composite import FEED, LOOSE, SMALL

FIRST, LAST = dt.date(2025, 12, 30), dt.date(2026, 1, 6)
EFFECTIVE = dt.date(2026, 1, 5)
FIXED_AT = dt.datetime(2026, 1, 6, 8, 0, tzinfo=dt.UTC)
ADOPTED_AT = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)  # long past the correction window


def lot_version():
    rules = LOOSE.assessment.model_copy(
        update={"commodities": {"COTTON": CommodityOverride(min_lot=1.5)}}
    )
    methodology = LOOSE.model_copy(
        update={
            "version": "test-lot",
            "effective_from": EFFECTIVE,
            "supersedes": None,
            "change": None,
            "assessment": rules,
        }
    )
    return Version.of(methodology.model_dump_json(), "adopted")


def current(session, model, key, code):
    table = models.Commodity if model is models.Assessment else models.IndexDefinition
    return {
        v.date: v
        for v in session.scalars(
            select(model)
            .join(table, table.id == getattr(model, key))
            .where(table.code == code, model.superseded_at.is_(None))
        )
    }


@pytest.fixture
def published(database_url, tmp_path):
    engine = make_engine(database_url)
    prepare_database(engine, SMALL, LOOSE)
    feed = tmp_path / "feed.csv"
    feed.write_text("\n".join(FEED) + "\n")
    with session_scope(engine) as session:
        ensure_exchange(session, "X")
    with session_scope(engine) as session:
        ingest_file(session, SMALL, feed, "X", calendar=Calendar(LOOSE))
    with session_scope(engine) as session:
        compute(session, FIRST, LAST, now=FIXED_AT, calendar=Calendar(LOOSE))
    yield engine
    engine.dispose()


def test_a_forced_version_restates_from_its_effective_date_only(published):
    with session_scope(published) as session:
        adoption = adopt(
            session,
            lot_version(),
            Operator("ops"),
            force=True,
            reason="cotton lots below 1.5 t are not arm's length",
            now=ADOPTED_AT,
            calendar=Calendar(LOOSE),
        )
    notices = adoption.compute.corrections
    assert {(n.index, n.date) for n in notices} == {
        (code, day) for code in ("COTTON", "TEST-AGR", "TEST") for day in (EFFECTIVE, LAST)
    }
    assert {(n.reason, n.forced) for n in notices} == {("methodology_change", True)}
    assert all("cotton lots below 1.5 t" in n.cause for n in notices)

    with session_scope(published) as session:
        cotton = current(session, models.Assessment, "commodity_id", "COTTON")
        rebar = current(session, models.Assessment, "commodity_id", "REBAR")
        test = current(session, models.IndexValue, "index_id", "TEST")
        assert [(cotton[d].price, cotton[d].methodology_version) for d in sorted(cotton)] == [
            (15000.0, LOOSE.version),
            (13500.0, LOOSE.version),
            (13503.0, "test-lot"),
            (16203.0, "test-lot"),
        ]
        assert {v.vintage for v in rebar.values()} == {1}
        assert test[dt.date(2025, 12, 31)].vintage == 1
        assert test[EFFECTIVE].value == pytest.approx(
            1020 * (0.6 * 1210 / 1100 + 0.4 * 13503 / 13500), rel=1e-12
        )
        assert test[EFFECTIVE].methodology_version == "test-lot"

    with session_scope(published) as session:
        in_force = Calendar(LOOSE).under(registry.in_force(LAST))
        assert in_force.methodology.version == "test-lot"
        later = ADOPTED_AT + dt.timedelta(hours=1)
        again = compute(session, FIRST, LAST, now=later, calendar=in_force)
    assert again.corrections == [] and again.assessments.restated == 0
