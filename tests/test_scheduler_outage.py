"""The scheduler survives its database going away: it logs, backs off, and once the
database is back it catches up every missed slot, each once."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from core.calendar import Calendar, CalendarOverrides
from core.methodology import in_force
from core.settings import Settings
from publication.schedule import intraday_slots
from scheduler.service import SchedulerService
from store.bootstrap import prepare_database
from store.db import make_engine
from tests.scheduler_support import witness_job, witness_metadata, witness_rows

pytestmark = pytest.mark.postgres
BEIJING = ZoneInfo("Asia/Shanghai")


def _wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _latest(engine) -> dt.datetime:
    return max(
        (slot for slot, _ in witness_rows(engine)), default=dt.datetime.min.replace(tzinfo=dt.UTC)
    )


def test_a_database_outage_is_survived_and_its_slots_caught_up(
    postgres_url, postgres_admin_url, catalogue, caplog, tmp_path
):
    engine = make_engine(postgres_url)
    prepare_database(engine, catalogue)
    witness_metadata.create_all(engine)
    today = dt.datetime.now(BEIJING).date()
    days = [today, today + dt.timedelta(days=1)]
    # Today and tomorrow are publication days, whatever the calendar says (the override file).
    calendar_file = tmp_path / "calendar.toml"
    calendar_file.write_text(f"working_days = [{', '.join(d.isoformat() for d in days)}]\n")
    settings = Settings(
        database_url=postgres_url,
        trading_hours="00:00-24:00",
        intraday_interval_seconds=0.2,
        heartbeat_seconds=0.5,
        calendar_file=calendar_file,
    )
    database = make_url(postgres_url).database
    service = SchedulerService(engine, settings, jobs=(witness_job(dt.timedelta(seconds=60)),))

    def outage(allow: bool) -> None:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(database), sql.SQL("true" if allow else "false")
                )
            )
            if not allow:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (database,),
                )

    with caplog.at_level(logging.WARNING):
        service.start()
        try:
            # Caught up with the present (the start catches up the last minute first).
            _wait_for(
                lambda: _latest(engine) > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), 30
            )
            outage(allow=False)
            down_at = dt.datetime.now(dt.UTC)
            time.sleep(3)
            assert service.healthy() is None  # still running, only waiting
            outage(allow=True)
            up_at = dt.datetime.now(dt.UTC)
            _wait_for(
                lambda: any(
                    slot > up_at + dt.timedelta(seconds=1) for slot, _ in witness_rows(engine)
                ),
                90,
            )
            assert service.healthy() is None and service.is_leader
        finally:
            service.shutdown()
            outage(allow=True)

    per_slot = Counter(slot for slot, _ in witness_rows(engine))
    assert max(per_slot.values()) == 1
    calendar = Calendar(
        in_force(), CalendarOverrides(working_days=frozenset(days)), settings.sessions
    )
    expected = list(intraday_slots(settings, calendar).slots(min(per_slot), max(per_slot)))
    assert sorted(per_slot) == expected
    assert min(per_slot) < down_at < up_at < max(per_slot)  # the outage is inside the run
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "database unreachable" in messages or "leader election unavailable" in messages
    engine.dispose()
