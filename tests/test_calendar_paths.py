"""Every path publishes on the days of ``/v1/calendar``, with the same values.

Three exchanges report trades on every calendar day from 2 February to 16 October 2026:
through the Spring Festival and National Day holidays, on their make-up Saturdays and
Sundays, and after each day's 15:00 cut-off. The same feeds are published by
``bcpi compute``, by the scheduler catching up every missed fixing, and by
``bcpi audit replay`` of the computed database; the three must publish on exactly the
publication days that ``/v1/calendar`` lists, value for value, bit for bit.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from core.settings import Settings, get_settings
from publication.fixing import compute
from scheduler.runner import Runner
from store import models
from store.db import make_engine, session_scope
from tests.calendar_support import SHANGHAI, World, fed, published, world

START, END = dt.date(2026, 2, 2), dt.date(2026, 10, 16)
CAUGHT_UP_AT = dt.datetime(2026, 10, 19, 9, 0, tzinfo=SHANGHAI)
NOT_PUBLICATION_DAYS = [
    dt.date(2026, 2, 14),  # make-up Saturday before the Spring Festival
    dt.date(2026, 2, 16),
    dt.date(2026, 2, 23),
    dt.date(2026, 2, 28),  # make-up Saturday after it
    dt.date(2026, 9, 20),  # make-up Sunday before National Day
    dt.date(2026, 10, 1),
    dt.date(2026, 10, 7),
    dt.date(2026, 10, 10),  # make-up Saturday after it
]


@pytest.fixture(scope="module")
def spring_to_autumn(tmp_path_factory) -> World:
    return world(tmp_path_factory.mktemp("calendar-paths"), START, END)


def _environment(monkeypatch, settings: Settings, catalogue_path: Path) -> None:
    monkeypatch.setenv("BCPI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(settings.archive_dir))
    monkeypatch.setenv("BCPI_CATALOGUE_PATH", str(catalogue_path))
    get_settings.cache_clear()


def test_compute_catch_up_and_replay_publish_the_same_values_on_the_calendars_days(
    spring_to_autumn, database_url, tmp_path, monkeypatch
):
    from cli.main import app as cli

    runner = CliRunner()
    computed = fed(f"sqlite:///{tmp_path / 'computed.db'}", tmp_path, spring_to_autumn)
    _environment(monkeypatch, computed, spring_to_autumn.catalogue_path)
    try:
        done = runner.invoke(cli, ["compute", "--start", str(START), "--end", str(END)])
        assert done.exit_code == 0, done.output
        replayed = runner.invoke(cli, ["audit", "replay", "--all", "--workdir", str(tmp_path)])
        assert replayed.exit_code == 0, replayed.output
        assert "every published value replayed bit-identical" in replayed.output
        with TestClient(_app(computed)) as client:
            listed = client.get("/v1/calendar", params={"year": 2026}).json()
    finally:
        get_settings.cache_clear()

    caught_up = fed(database_url, tmp_path, spring_to_autumn).model_copy(
        update={
            "scheduler_jobs": ["fixing"],
            "catchup_horizon_days": (CAUGHT_UP_AT.date() - START).days + 1,
        }
    )
    engine = make_engine(caught_up.database_url)
    records = Runner(engine, caught_up, holder="catch-up", clock=lambda: CAUGHT_UP_AT).run_due()
    engine.dispose()
    assert records and all(r.outcome == "succeeded" for r in records)

    days = [dt.date.fromisoformat(d["date"]) for d in listed["days"]]
    days = [d for d in days if START <= d <= END]
    assert not set(NOT_PUBLICATION_DAYS) & set(days)
    assert [r.slot.astimezone(SHANGHAI).date() for r in records] == days

    by_path = {
        "bcpi compute": published(computed.database_url),
        "scheduler catch-up": published(caught_up.database_url),
        "bcpi audit replay": published(f"sqlite:///{tmp_path / 'replay.db'}"),
    }
    for path, (values, prices) in by_path.items():
        assert sorted({d for _, d in values}) == days, path
        assert sorted({d for _, d in prices}) == days, path
        assert len(values) == len(days) * 15 and len(prices) == len(days) * 9, path
    reference = by_path["bcpi compute"]
    for path, answer in by_path.items():
        assert answer == reference, f"{path} differs from bcpi compute"


def _app(settings: Settings):
    from api.app import create_app

    return create_app(settings)


def test_a_window_after_a_holiday_holds_the_trades_stamped_during_it(spring_to_autumn, tmp_path):
    feeds = spring_to_autumn.feeds
    settings = fed(f"sqlite:///{tmp_path / 'window.db'}", tmp_path, spring_to_autumn)

    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        compute(session, dt.date(2026, 2, 13), dt.date(2026, 2, 24))
    with session_scope(engine) as session:
        assessment = session.scalar(
            select(models.Assessment)
            .join(models.Commodity)
            .where(models.Commodity.code == "REBAR", models.Assessment.date == dt.date(2026, 2, 24))
        )
        rationale = assessment.rationale
    engine.dispose()

    opens_after = dt.datetime(2026, 2, 13, 15, tzinfo=SHANGHAI)
    closes_at = dt.datetime(2026, 2, 24, 15, tzinfo=SHANGHAI)
    assert rationale["window"]["opens_after"] == opens_after.isoformat()
    assert rationale["window"]["closes_at"] == closes_at.isoformat()
    stamped = pl.concat(pl.read_csv(path, infer_schema=False) for path in feeds.values())
    inside = stamped.filter(pl.col("commodity") == "REBAR").with_columns(
        pl.col("traded_at").str.to_datetime("%Y-%m-%dT%H:%M:%S%:z", time_zone="UTC")
    )
    inside = inside.filter(
        (pl.col("traded_at") > opens_after.astimezone(dt.UTC))
        & (pl.col("traded_at") <= closes_at.astimezone(dt.UTC))
    )
    # 13 to 24 February, the Spring Festival and its make-up Saturday included: two trades a
    # day from each of three exchanges, less the 13th's before and the 24th's after 15:00.
    assert inside.height == 3 * (2 * 12 - 1 - 1)
    assert rationale["statistics"]["window_trades"] == inside.height


def test_a_late_trade_stamped_on_a_holiday_marks_and_restates_the_next_publication_day(
    spring_to_autumn, tmp_path
):
    from ingest.batch import ingest_frame
    from publication.restatement import sweep

    settings = fed(f"sqlite:///{tmp_path / 'late.db'}", tmp_path, spring_to_autumn)
    engine = make_engine(settings.database_url)
    fixed_at = dt.datetime(2026, 2, 24, 16, tzinfo=SHANGHAI)
    with session_scope(engine) as session:
        compute(session, START, dt.date(2026, 2, 24), now=fixed_at)
    late = pl.DataFrame(
        {
            "trade_id": ["late-1"],
            "commodity": ["REBAR"],
            "traded_at": ["2026-02-14T10:30:00+08:00"],  # the make-up Saturday
            "price": ["3400"],
            "quantity": ["600"],
            "currency": ["CNY"],
            "unit": ["t"],
        }
    )
    with session_scope(engine) as session:
        result = ingest_frame(
            session,
            spring_to_autumn.catalogue,
            late,
            exchange_code="BJCX",
            source="http",
            sha256="0" * 64,
            now=fixed_at + dt.timedelta(hours=1),
            settings=settings,
        )
        assert result.accepted == 1
        marks = session.execute(
            select(
                models.Commodity.code, models.RestatementMark.date, models.RestatementMark.reason
            )
            .join(models.Commodity)
            .where(models.RestatementMark.cleared_at.is_(None))
        ).all()
    assert marks == [("REBAR", dt.date(2026, 2, 24), "late_trade")]

    with session_scope(engine) as session:
        report = sweep(session, fixed_at + dt.timedelta(hours=2))
    engine.dispose()
    restated = {(n.index, n.date) for n in report.corrections}
    assert restated == {(code, dt.date(2026, 2, 24)) for code in ("BCPI", "BCPI-FER", "REBAR")}
    assert {n.reason for n in report.corrections} == {"late_trade"}
    assert {n.cause.split(":")[0] for n in report.corrections} == {"REBAR 2026-02-24"}
