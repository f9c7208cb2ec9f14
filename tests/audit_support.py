"""A small published history for the audit tests: the demo's feed files, then HTTP pushes
(late trades, a re-sent batch, a cancel, an amend, a trade held for its FX rate), an FX
load, a recomputation (the values are frozen), a restatement sweep (the marks are before
the window), an operator's forced restatement and an intraday run.

Every date is a publication day of 2 to 14 January 2025, which holds no mainland public
holiday (1 January is one, the Spring Festival begins on 28 January): the calendar in force
and the demo's weekdays agree on each of them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from cli.demo import run_pipeline
from core.catalogue import Catalogue
from core.settings import Settings
from ingest.fx import load_fx
from publication.fixing import compute, default_calendar
from publication.intraday import publish_provisional
from publication.restatement import force_restatement, sweep
from store.db import session_scope
from tests.feeds_support import client_for, exchange_key, push, trade

START = dt.date(2025, 1, 2)
DAYS = 8  # 2 to 13 January 2025
LAST = dt.date(2025, 1, 13)
LATE_DAY = dt.date(2025, 1, 6)
HELD_DAY = dt.date(2025, 1, 7)
INTRADAY_DAY = dt.date(2025, 1, 14)


@dataclass(frozen=True)
class History:
    engine: Engine
    database_url: str
    archive: Path


def _at(day: dt.date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}:00+08:00"


def build_history(
    engine: Engine, database_url: str, catalogue: Catalogue, tmp_path: Path, monkeypatch
) -> History:
    monkeypatch.chdir(tmp_path)  # the demo archives under ./var/archive
    archive = tmp_path / "var" / "archive"
    calendar = default_calendar()
    assert len(calendar.publication_days(START, LAST)) == DAYS
    assert calendar.next_publication_day(LAST) == INTRADAY_DAY
    run_pipeline(engine, catalogue, tmp_path / "feeds", days=DAYS, start=START, calendar=calendar)

    with client_for(database_url, archive) as client:
        key = exchange_key(engine, "HTTPX")
        late = [
            trade("L1", traded_at=_at(LATE_DAY, "10:15"), price="3310", quantity="200"),
            trade("L2", traded_at=_at(LATE_DAY, "11:30"), price="3290", quantity="300"),
            trade(
                "L3", commodity="PTA", traded_at=_at(LATE_DAY, "13:00"), price="4710", quantity="50"
            ),
            trade("BAD", price="-1", traded_at=_at(LATE_DAY, "13:00")),
        ]
        first = push(client, key, late, "json", headers={"Idempotency-Key": "late-1"})
        assert first.status_code == 200, first.text
        again = push(client, key, late, "csv", headers={"Idempotency-Key": "late-2"})
        assert again.json()["duplicates"] == 3, again.text
        held = [
            trade(
                "H1",
                commodity="METHANOL",
                traded_at=_at(HELD_DAY, "10:00"),
                price="330",
                currency="USD",
                quantity="500",
            ),
        ]
        assert push(client, key, held, "ndjson").json()["held"] == 1
        headers = {"Authorization": f"Bearer {key}"}
        assert client.delete("/v1/trades/L2", headers=headers).status_code == 200
        amended = client.put("/v1/trades/L1", headers=headers, json={**late[0], "price": "3305"})
        assert amended.status_code == 200, amended.text
        today = [
            trade(
                f"T{n}",
                traded_at=_at(INTRADAY_DAY, f"{9 + n}:05"),
                price=str(3300 + n),
                quantity="100",
            )
            for n in range(3)
        ]
        assert push(client, key, today, "parquet").json()["accepted"] == 3

    fx = tmp_path / "fx.csv"
    fx.write_text(f"date,currency,cny_per_unit\n{HELD_DAY},USD,7.2\n")
    with session_scope(engine) as session:
        assert load_fx(session, catalogue, fx, calendar=calendar).released == 1

    # January 2025 is long outside the correction window: a recomputation changes nothing,
    # and only an operator's forced restatement publishes the late trades' effect.
    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as session:
        recomputed = compute(session, START, LAST, now=now)
    assert recomputed.index_values.restated == 0 and recomputed.assessments.frozen > 0
    with session_scope(engine) as session:
        sweep(session, now + dt.timedelta(minutes=5))
    with session_scope(engine) as session:
        reason = "late trades and an FX load after the correction window"
        forced = force_restatement(
            session, "BCPI", START, LAST, reason, now + dt.timedelta(minutes=10)
        )
    assert forced.index_values.restated > 0
    assert all(c.forced and c.reason == "operator" for c in forced.corrections)
    with session_scope(engine) as session:
        noon = dt.datetime.combine(INTRADAY_DAY, dt.time(11, 0), dt.timezone(dt.timedelta(hours=8)))
        publish_provisional(session, noon)
    return History(engine, database_url, archive)


def settings_for(history: History) -> Settings:
    return Settings(database_url=history.database_url, archive_dir=history.archive)
