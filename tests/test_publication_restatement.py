"""A late trade inside the correction window: restated vintages, correction notices, as_of.

Composite TEST = 0.6 REBAR + 0.4 COTTON, base 30 Dec 2025 = 1000, linked at 31 Dec. The
publication days are 30 and 31 Dec 2025 and 5 and 6 Jan 2026: under the mainland calendar of
the methodology in force, 1 and 2 Jan 2026 are public holidays.
Levels by hand (REBAR 30 × A / 10 a tonne, COTTON VWAP 15 × B):
  A = 1000, 1100, 1210, 1100    B = 1000, 900, 900, 1080
  TEST: 1000; 31 Dec 1000 × (0.6 × 1.1 + 0.4 × 0.9) = 1020;
        5 Jan 1020 × (0.6 × 1210/1100 + 0.4 × 900/900) = 1081.2;
        6 Jan 1020 × (0.6 × 1100/1100 + 0.4 × 1080/900) = 1101.6.
A late cotton trade stamped on the 2 Jan holiday belongs to the window of 5 Jan: beside
13 494 × 1 and 13 503 × 2, its 14 100 × 3 t moves cotton's VWAP on 5 Jan to
(13 500 × 3 + 14 100 × 3) / 6 = 13 800, level 920, and TEST on 5 Jan to
1020 × (0.6 × 1.1 + 0.4 × 920/900) = 1090.2666…; 6 Jan does not move (it is linked to 31 Dec).
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.calendar import Calendar
from core.catalogue import parse_catalogue
from core.methodology import CalendarRules, PublicationRules
from core.settings import Settings
from ingest.files import ingest_file
from publication.fixing import compute
from publication.restatement import sweep
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.models import Correction
from store.reference import ensure_exchange
from tests.test_composite import LOOSE, SMALL_CATALOGUE

CATALOGUE = SMALL_CATALOGUE
DAYS = ["2025-12-30", "2025-12-31", "2026-01-05", "2026-01-06"]
A = [1000.0, 1100.0, 1210.0, 1100.0]
B = [1000.0, 900.0, 900.0, 1080.0]
HEADER = "trade_id,commodity,traded_at,price,quantity,currency,unit"
FEED = [HEADER]
for n, (day, a, b) in enumerate(zip(DAYS, A, B, strict=True)):
    FEED += [
        f"R{n},REBAR,{day}T10:00:00+08:00,{3 * a},50,CNY,t",
        f"C{n}a,COTTON,{day}T10:05:00+08:00,{15 * b - 6},1,CNY,t",
        f"C{n}b,COTTON,{day}T14:59:59+08:00,{15 * b + 3},2,CNY,t",
    ]
FIXED_AT = dt.datetime(2026, 1, 6, 8, 0, tzinfo=dt.UTC)  # 16:00 in Beijing on 6 Jan
SWEPT_AT = dt.datetime(2026, 1, 7, 9, 0, tzinfo=dt.UTC)  # 17:00 in Beijing on 7 Jan
HOLIDAY = dt.date(2026, 1, 2)
JAN5 = dt.date(2026, 1, 5)  # the publication day whose window holds 1 and 2 Jan
LATE = "LATE1,COTTON,2026-01-02T11:00:00+08:00,14100,3,CNY,t"  # stamped on the holiday
OLD = 1081.2
NEW = 1020 * (0.6 * 1.1 + 0.4 * 920 / 900)


@pytest.fixture
def published(database_url, tmp_path):
    catalogue = parse_catalogue(CATALOGUE)
    path = tmp_path / "catalogue.toml"
    path.write_text(CATALOGUE)
    engine = make_engine(database_url)
    prepare_database(engine, catalogue, LOOSE)
    with session_scope(engine) as session:
        ensure_exchange(session, "X")
    _ingest(engine, catalogue, tmp_path / "feed.csv", FEED)
    with session_scope(engine) as session:
        compute(
            session,
            dt.date(2025, 12, 30),
            dt.date(2026, 1, 6),
            now=FIXED_AT,
            calendar=Calendar(LOOSE),
        )
    yield engine, catalogue, path, database_url
    engine.dispose()


def _ingest(engine, catalogue, path, lines):
    path.write_text("\n".join(lines) + "\n")
    with session_scope(engine) as session:
        return ingest_file(session, catalogue, path, "X")


def _late_trade(engine, catalogue, tmp_path, line, day):
    """Ingest one late trade; mark its day if ingest did not (the sweep reads the marks)."""
    with session_scope(engine) as session:
        before = session.scalar(select(func.count()).select_from(models.RestatementMark))
    assert _ingest(engine, catalogue, tmp_path / "late.csv", [HEADER, line]).accepted == 1
    with session_scope(engine) as session:
        after = session.scalar(select(func.count()).select_from(models.RestatementMark))
        if after == before:
            cotton = session.scalar(
                select(models.Commodity.id).where(models.Commodity.code == "COTTON")
            )
            session.add(models.RestatementMark(commodity_id=cotton, date=day, reason="late_trade"))


def _weekdays(holidays=frozenset()) -> Calendar:
    """LOOSE with the calendar pinned to plain weekdays (minus ``holidays``): these counts
    are about counting publication days back, not about the mainland holidays."""
    rules = CalendarRules(rule="weekdays", holidays=frozenset(holidays))
    return Calendar(LOOSE.model_copy(update={"calendar": rules}))


def test_window_counts_publication_days_back_from_today():
    weekdays = _weekdays()
    assert weekdays.publication_days_before(dt.date(2026, 1, 6), 5) == dt.date(2025, 12, 31)
    assert weekdays.publication_days_before(dt.date(2026, 1, 10), 1) == dt.date(2026, 1, 9)
    assert weekdays.publication_days_before(dt.date(2026, 1, 12), 3) == dt.date(2026, 1, 8)
    with_holiday = _weekdays({dt.date(2026, 1, 1)})
    assert with_holiday.publication_days_before(dt.date(2026, 1, 6), 5) == dt.date(2025, 12, 30)
    # The mainland calendar in force: 1 and 2 Jan 2026 are holidays, so 5 days back from
    # 6 Jan are 6 and 5 Jan and 31, 30 and 29 Dec; Sunday 4 Jan, a make-up working day, is
    # not a publication day either.
    mainland = Calendar(LOOSE)
    assert mainland.publication_days_before(dt.date(2026, 1, 6), 5) == dt.date(2025, 12, 29)
    assert mainland.publication_days_before(dt.date(2026, 1, 4), 1) == dt.date(2025, 12, 31)


def test_late_trade_inside_the_window_restates_and_publishes_notices(published, tmp_path):
    engine, catalogue, catalogue_path, database_url = published
    _late_trade(engine, catalogue, tmp_path, LATE, JAN5)

    with session_scope(engine) as session:
        report = sweep(session, SWEPT_AT, calendar=Calendar(LOOSE))
    # Five publication days back from 7 Jan: 7, 6, 5 Jan, 31 and 30 Dec.
    assert report.window_start == dt.date(2025, 12, 30)
    assert report.marks >= 1 and report.expired == 0
    by_code = {c.index: c for c in report.corrections}
    assert set(by_code) == {"TEST", "TEST-AGR", "COTTON"}
    assert all(c.date == JAN5 for c in report.corrections)
    assert by_code["TEST"].old_value == pytest.approx(OLD, rel=1e-12)
    assert by_code["TEST"].new_value == pytest.approx(NEW, rel=1e-12)
    assert by_code["COTTON"].new_value == pytest.approx(920.0, rel=1e-12)
    assert {c.reason for c in report.corrections} == {"late_trade"}
    assert "COTTON 2026-01-05: batch " in by_code["TEST"].cause
    assert not any(c.forced for c in report.corrections)

    with session_scope(engine) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(models.RestatementMark)
                .where(models.RestatementMark.cleared_at.is_(None))
            )
            == 0
        )
        assert session.scalar(select(func.count()).select_from(Correction)) == 3
    with session_scope(engine) as session:
        again = sweep(session, SWEPT_AT + dt.timedelta(hours=1), calendar=Calendar(LOOSE))
    assert again.corrections == []

    settings = Settings(database_url=database_url, catalogue_path=catalogue_path)
    with TestClient(_app(settings)) as client:
        url = "/v1/indices/TEST/series"
        before = client.get(
            url,
            params={
                "start": JAN5,
                "end": JAN5,
                "as_of": (SWEPT_AT - dt.timedelta(seconds=1)).isoformat(),
            },
        ).json()
        after = client.get(
            url, params={"start": JAN5, "end": JAN5, "as_of": SWEPT_AT.isoformat()}
        ).json()
        assert [(p["value"], p["status"]) for p in before["points"]] == [
            (pytest.approx(OLD, rel=1e-12), "final")
        ]
        assert [(p["value"], p["status"]) for p in after["points"]] == [
            (pytest.approx(NEW, rel=1e-12), "restated")
        ]
        assert before["as_of"] is not None

        notices = client.get("/v1/corrections", params={"since": SWEPT_AT.isoformat()}).json()
        test_notice = next(n for n in notices["corrections"] if n["index"] == "TEST")
        assert test_notice["date"] == "2026-01-05"
        assert test_notice["old_value"] == pytest.approx(OLD, rel=1e-12)
        assert test_notice["new_value"] == pytest.approx(NEW, rel=1e-12)
        assert (test_notice["old_vintage"], test_notice["new_vintage"]) == (1, 2)
        assert test_notice["reason"] == "late_trade"
        assert test_notice["cause"].startswith("COTTON 2026-01-05: batch ")
        assert test_notice["forced"] is False
        later = client.get(
            "/v1/corrections", params={"since": (SWEPT_AT + dt.timedelta(seconds=1)).isoformat()}
        )
        assert later.json()["corrections"] == []

        vintages = client.get("/v1/indices/TEST/vintages", params={"date": JAN5}).json()["vintages"]
        assert [(v["vintage"], v["status"]) for v in vintages] == [(1, "final"), (2, "restated")]
        assert vintages[0]["superseded_at"] == vintages[1]["published_at"]
        known_then = client.get(
            "/v1/indices/TEST/vintages",
            params={"date": JAN5, "as_of": (SWEPT_AT - dt.timedelta(seconds=1)).isoformat()},
        ).json()["vintages"]
        assert [(v["vintage"], v["superseded_at"]) for v in known_then] == [(1, None)]

        changes = client.get(
            "/v1/changes", params={"updated_after": FIXED_AT.isoformat(), "kind": "index"}
        ).json()
        assert sorted((c["code"], c["date"], c["status"]) for c in changes["changes"]) == [
            ("COTTON", "2026-01-05", "restated"),
            ("TEST", "2026-01-05", "restated"),
            ("TEST-AGR", "2026-01-05", "restated"),
        ]


def _window(days: int) -> Calendar:
    """LOOSE with a correction window of ``days`` publication days."""
    rules = PublicationRules(correction_window_days=days)
    return Calendar(LOOSE.model_copy(update={"publication": rules}))


def test_late_trade_before_the_window_is_not_restated(published, tmp_path):
    engine, catalogue, _, _ = published
    late = "LATE2,COTTON,2025-12-30T11:00:00+08:00,16000,3,CNY,t"
    _late_trade(engine, catalogue, tmp_path, late, dt.date(2025, 12, 30))
    with session_scope(engine) as session:
        report = sweep(session, dt.datetime(2026, 1, 9, 9, 0, tzinfo=dt.UTC), calendar=_window(3))
    # Three publication days back from 9 Jan: 9, 8, 7 Jan (after the last published day).
    assert report.window_start == dt.date(2026, 1, 7)
    assert report.expired == 1 and report.corrections == []
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Correction)) == 0
        assert (
            session.scalar(
                select(func.count())
                .select_from(models.RestatementMark)
                .where(models.RestatementMark.cleared_at.is_(None))
            )
            == 0
        )


def _app(settings):
    from api.app import create_app

    return create_app(settings)
