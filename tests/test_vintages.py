"""Recomputation publishes a new vintage only when inputs change; nothing is overwritten.

The composite tests' feed trades on 30 and 31 December 2025 and 5 and 6 January 2026; 1 and
2 January are mainland public holidays, so under the methodology in force a trade stamped
on them belongs to the window of 5 January."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.calendar import Calendar
from core.catalogue import parse_catalogue
from ingest.files import ingest_file
from publication.fixing import compute
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import ensure_exchange
from tests.test_composite import FEED, LOOSE, SMALL_CATALOGUE

FIRST, LAST = dt.date(2025, 12, 30), dt.date(2026, 1, 6)
# The day after LAST: every date of the range is inside the correction window.
NOW = dt.datetime(2026, 1, 7, 9, 0, tzinfo=dt.UTC)
HOLIDAY, AFTER_IT = dt.date(2026, 1, 2), dt.date(2026, 1, 5)


def _ingest(engine, catalogue, path, lines):
    path.write_text("\n".join(lines) + "\n")
    with session_scope(engine) as session:
        return ingest_file(session, catalogue, path, "X")


@pytest.fixture
def fed(database_url, tmp_path):
    """(engine, catalogue): the small catalogue's database with the composite tests' feed."""
    catalogue = parse_catalogue(SMALL_CATALOGUE)
    engine = make_engine(database_url)
    prepare_database(engine, catalogue, LOOSE)
    with session_scope(engine) as session:
        ensure_exchange(session, "X")
    _ingest(engine, catalogue, tmp_path / "a.csv", FEED)
    yield engine, catalogue
    engine.dispose()


def _vintages(engine, code: str, day: dt.date):
    with session_scope(engine) as session:
        return (
            session.execute(
                select(models.IndexValue)
                .join(
                    models.IndexDefinition, models.IndexValue.index_id == models.IndexDefinition.id
                )
                .where(models.IndexDefinition.code == code, models.IndexValue.date == day)
                .order_by(models.IndexValue.vintage)
            )
            .scalars()
            .all()
        )


def test_late_trade_restates_only_the_affected_values(fed, tmp_path):
    engine, catalogue = fed
    with session_scope(engine) as session:
        compute(session, FIRST, LAST, now=NOW, calendar=Calendar(LOOSE))
    with session_scope(engine) as session:
        again = compute(session, FIRST, LAST, now=NOW, calendar=Calendar(LOOSE))
    assert (again.assessments.new, again.assessments.restated) == (0, 0)
    assert (again.index_values.new, again.index_values.restated) == (0, 0)

    # A late trade stamped on the 2 January holiday: it belongs to 5 January's window.
    late = [FEED[0], "LATE1,COTTON,2026-01-02T11:00:00+08:00,14100,3,CNY,t"]
    assert _ingest(engine, catalogue, tmp_path / "b.csv", late).accepted == 1
    with session_scope(engine) as session:
        report = compute(session, FIRST, LAST, now=NOW, calendar=Calendar(LOOSE))
    # One assessment (cotton, 5 Jan) and three index values (cotton, its sector, composite).
    assert (report.assessments.new, report.assessments.restated) == (0, 1)
    assert (report.index_values.new, report.index_values.restated) == (0, 3)

    assert _vintages(engine, "TEST", HOLIDAY) == []
    old, new = _vintages(engine, "TEST", AFTER_IT)
    engine.dispose()
    assert old.value == pytest.approx(1081.2, rel=1e-12)
    assert old.superseded_at is not None and old.superseded_at == new.published_at
    assert (new.vintage, new.status, new.superseded_at) == (2, "restated", None)
    # Cotton's VWAP on 5 Jan becomes (13500 × 3 + 14100 × 3) / 6 = 13800, level 920:
    # 1020 × (0.6 × 1.1 + 0.4 × 920/900) = 1090.2666…
    assert new.value == pytest.approx(1020 * (0.6 * 1.1 + 0.4 * 920 / 900), rel=1e-12)


def test_each_value_records_the_methodology_version_it_was_computed_under(fed):
    engine, _ = fed
    trial = LOOSE.model_copy(update={"version": "2099.1"})
    with session_scope(engine) as session:
        report = compute(session, FIRST, LAST, now=NOW, calendar=Calendar(trial))
        versions = {
            model.__name__: set(session.scalars(select(model.methodology_version)))
            for model in (models.Assessment, models.IndexValue)
        }
    engine.dispose()
    assert report.assessments.new > 0 and report.index_values.new > 0
    assert versions == {"Assessment": {"2099.1"}, "IndexValue": {"2099.1"}}
