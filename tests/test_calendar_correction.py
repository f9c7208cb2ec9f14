"""Methodology 2025.2 corrects 2025.1's empty holiday list.

A deployment that published under 2025.1 has values on the 2026 New Year holidays. After
the upgrade, ``bcpi compute`` withdraws them (a ``withdrawn`` vintage and a correction
notice with reason ``calendar_correction``), restates the next publication day, whose
window now holds the holidays' trades, and leaves every other value as it was.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from api.app import create_app
from core.calendar import Calendar
from core.methodology import load_methodology
from core.settings import get_settings
from publication.fixing import compute
from store import models
from store.db import make_engine, session_scope
from tests.calendar_support import World, fed, published, world

START, END = dt.date(2025, 12, 29), dt.date(2026, 1, 9)
HOLIDAYS = [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]
AFTER_THEM = dt.date(2026, 1, 5)
UNTOUCHED = [dt.date(2025, 12, 29), dt.date(2025, 12, 30), dt.date(2025, 12, 31)]
UNTOUCHED += [dt.date(2026, 1, 6), dt.date(2026, 1, 7), dt.date(2026, 1, 8), dt.date(2026, 1, 9)]
PUBLISHED_AT = dt.datetime(2026, 1, 12, 8, tzinfo=dt.UTC)
INDICES = 15


@pytest.fixture(scope="module")
def new_year(tmp_path_factory) -> World:
    return world(tmp_path_factory.mktemp("calendar-correction"), START, END)


def test_bcpi_compute_withdraws_holiday_values_and_restates_the_next_day(
    new_year, database_url, tmp_path, monkeypatch
):
    from cli.main import app as cli

    settings = fed(database_url, tmp_path, new_year)
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        compute(
            session, START, END, now=PUBLISHED_AT, calendar=Calendar(load_methodology("2025.1"))
        )
    before, _ = published(database_url)
    assert {d for _, d in before} >= set(HOLIDAYS)  # the defect: values on holidays

    monkeypatch.setenv("BCPI_DATABASE_URL", database_url)
    monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(settings.archive_dir))
    monkeypatch.setenv("BCPI_CATALOGUE_PATH", str(new_year.catalogue_path))
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(cli, ["compute", "--start", str(START), "--end", str(END)])
        again = CliRunner().invoke(cli, ["compute", "--start", str(START), "--end", str(END)])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert "withdrawn, not publication days: 2026-01-01, 2026-01-02" in done.output

    with session_scope(engine) as session:
        current = {
            (v.index_id, v.date): v
            for v in session.scalars(
                select(models.IndexValue).where(models.IndexValue.superseded_at.is_(None))
            )
        }
        notices = session.scalars(select(models.Correction)).all()
        ids = select(models.IndexDefinition.id, models.IndexDefinition.code)
        codes = {index_id: code for index_id, code in session.execute(ids)}
    engine.dispose()

    withdrawn = [v for v in current.values() if v.date in HOLIDAYS]
    assert len(withdrawn) == 2 * INDICES
    assert all(v.status == "withdrawn" and v.value is None for v in withdrawn)
    assert all(v.vintage == 2 and v.methodology_version == "2025.2" for v in withdrawn)
    restated = [v for v in current.values() if v.date == AFTER_THEM]
    assert all(v.status == "restated" and v.methodology_version == "2025.2" for v in restated)
    untouched = [v for v in current.values() if v.date in UNTOUCHED]
    assert len(untouched) == len(UNTOUCHED) * INDICES
    assert all(v.vintage == 1 and v.methodology_version == "2025.1" for v in untouched)

    by_day = {}
    for notice in notices:
        by_day.setdefault(notice.date, []).append(notice)
    assert sorted(by_day) == [*HOLIDAYS, AFTER_THEM]
    assert {n.reason for n in notices} == {"calendar_correction"}
    assert all(n.new_value is None for day in HOLIDAYS for n in by_day[day])
    assert len(by_day[AFTER_THEM]) == INDICES
    for notice in by_day[AFTER_THEM]:
        assert notice.old_value == before[(codes[notice.index_id], AFTER_THEM)]
        assert notice.new_value == current[(notice.index_id, AFTER_THEM)].value
        assert notice.old_value != notice.new_value  # two more days of trades in its window

    # The same trades published under 2025.2 from the start give the same values.
    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    fed(fresh_url, tmp_path / "fresh", new_year)
    fresh_engine = make_engine(fresh_url)
    with session_scope(fresh_engine) as session:
        compute(
            session, START, END, now=PUBLISHED_AT, calendar=Calendar(load_methodology("2025.2"))
        )
    fresh_engine.dispose()
    assert published(database_url) == published(fresh_url)

    assert again.exit_code == 0, again.output
    assert "correction notices" not in again.output  # nothing left to correct


def test_readers_no_longer_see_a_withdrawn_value_but_can_ask_what_was_known(new_year, tmp_path):
    url = f"sqlite:///{tmp_path / 'readers.db'}"
    settings = fed(url, tmp_path, new_year)
    engine = make_engine(url)
    with session_scope(engine) as session:
        compute(
            session, START, END, now=PUBLISHED_AT, calendar=Calendar(load_methodology("2025.1"))
        )
    corrected_at = PUBLISHED_AT + dt.timedelta(days=1)
    with session_scope(engine) as session:
        compute(
            session, START, END, now=corrected_at, calendar=Calendar(load_methodology("2025.2"))
        )
    engine.dispose()

    with TestClient(create_app(settings)) as client:
        now = client.get("/v1/indices/BCPI/series", params={"start": START, "end": END}).json()
        then = client.get(
            "/v1/indices/BCPI/series",
            params={"start": START, "end": END, "as_of": PUBLISHED_AT.isoformat()},
        ).json()
        vintages = client.get("/v1/indices/BCPI/vintages", params={"date": "2026-01-02"}).json()
        notices = client.get("/v1/corrections", params={"index": "BCPI"}).json()
        explained = client.get("/v1/indices/BCPI/explain", params={"date": "2026-01-02"})

    dates_now = [p["date"] for p in now["points"]]
    dates_then = [p["date"] for p in then["points"]]
    assert "2026-01-01" not in dates_now and "2026-01-02" not in dates_now
    assert "2026-01-01" in dates_then and "2026-01-02" in dates_then
    assert [(v["vintage"], v["status"], v["value"] is None) for v in vintages["vintages"]] == [
        (1, "final", False),
        (2, "withdrawn", True),
    ]
    withdrawals = [n for n in notices["corrections"] if n["new_value"] is None]
    assert sorted(n["date"] for n in withdrawals) == ["2026-01-01", "2026-01-02"]
    assert {n["reason"] for n in notices["corrections"]} == {"calendar_correction"}
    assert explained.status_code == 404
