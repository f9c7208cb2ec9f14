"""The exactly-once fence: one publication per (job, slot), whatever fails or races."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import func, select

from core.errors import BcpiError
from scheduler.runs import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    DatabaseUnavailable,
    SlotState,
    run_slot,
    still_due,
)
from store.db import make_engine, session_scope
from store.models import JobRun
from tests.scheduler_support import witness, witness_metadata

SLOT = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.UTC)
CLOCK = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


@pytest.fixture
def fenced(engine):
    witness_metadata.create_all(engine)
    return engine


def _publish(session, pause: float = 0.0):
    session.execute(witness.insert().values(slot=SLOT, pid=0, at=CLOCK()))
    if pause:
        time.sleep(pause)
    return {"published": 1}


def _witnessed(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(witness))


def _run_row(engine) -> JobRun:
    with session_scope(engine) as session:
        return session.scalars(select(JobRun)).one()


def test_a_slot_runs_once_and_its_run_is_recorded(fenced):
    first = run_slot(fenced, "fixing", SLOT, _publish, holder="a", clock=CLOCK)
    again = run_slot(fenced, "fixing", SLOT, _publish, holder="b", clock=CLOCK)
    assert (first.outcome, again.outcome) == (SUCCEEDED, "done_elsewhere")
    assert _witnessed(fenced) == 1
    row = _run_row(fenced)
    assert (row.job, row.slot, row.outcome, row.attempts, row.holder) == (
        "fixing",
        SLOT,
        SUCCEEDED,
        1,
        "a",
    )
    assert row.started_at <= row.finished_at and row.error is None
    assert row.detail == {"published": 1}


def test_a_failed_slot_publishes_nothing_and_is_retried_after_its_backoff(fenced):
    def broken(session):
        _publish(session)
        raise BcpiError("no assessment on the base date")

    failed = run_slot(fenced, "fixing", SLOT, broken, holder="a", clock=CLOCK)
    assert failed.outcome == FAILED and "no assessment on the base date" in failed.error
    assert _witnessed(fenced) == 0  # the half-done publication was rolled back
    row = _run_row(fenced)
    assert row.outcome == FAILED and "BcpiError" in row.error and row.finished_at
    state = SlotState(row.outcome, row.attempts, row.finished_at)
    ceiling = dt.timedelta(minutes=10)
    assert not still_due(state, row.finished_at, retry=True, retry_ceiling=ceiling)
    later = row.finished_at + dt.timedelta(seconds=5)
    assert still_due(state, later, retry=True, retry_ceiling=ceiling)
    assert not still_due(state, later, retry=False, retry_ceiling=ceiling)

    retried = run_slot(fenced, "fixing", SLOT, _publish, holder="b", clock=CLOCK)
    assert retried.outcome == SUCCEEDED
    row = _run_row(fenced)
    assert (row.outcome, row.attempts, row.error) == (SUCCEEDED, 2, None)
    assert _witnessed(fenced) == 1


def test_a_run_killed_inside_its_transaction_is_completed_exactly_once(fenced):
    class Killed(BaseException):
        """What the process sees when it dies mid-run: nothing after this point happens."""

    def dies(session):
        _publish(session)
        raise Killed

    with pytest.raises(Killed):
        run_slot(fenced, "fixing", SLOT, dies, holder="a", clock=CLOCK)
    row = _run_row(fenced)
    assert row.outcome == RUNNING and _witnessed(fenced) == 0
    assert still_due(
        SlotState(row.outcome, row.attempts, row.finished_at),
        CLOCK(),
        retry=False,
        retry_ceiling=dt.timedelta(minutes=1),
    )
    completed = run_slot(fenced, "fixing", SLOT, _publish, holder="b", clock=CLOCK)
    assert completed.outcome == SUCCEEDED
    assert _witnessed(fenced) == 1
    assert _run_row(fenced).attempts == 2


def test_runners_racing_for_one_slot_publish_it_once(fenced):
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def race(name: str) -> None:
        engine = make_engine(str(fenced.url.render_as_string(hide_password=False)))
        start.wait()
        record = run_slot(
            engine, "fixing", SLOT, lambda s: _publish(s, pause=0.3), holder=name, clock=CLOCK
        )
        outcomes.append(record.outcome)
        engine.dispose()

    threads = [threading.Thread(target=race, args=(f"runner{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["done_elsewhere"] * 3 + [SUCCEEDED]
    assert _witnessed(fenced) == 1
    assert _run_row(fenced).outcome == SUCCEEDED


def test_an_unreachable_database_is_reported_as_such_not_as_a_failed_job():
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/bcpi?connect_timeout=2")
    with pytest.raises(DatabaseUnavailable):
        run_slot(engine, "fixing", SLOT, _publish, holder="a", clock=CLOCK)
    engine.dispose()
