"""Job-run records and the exactly-once fence around every slot.

A slot runs in three short steps:

1. *claim* (own transaction): insert ``(job, slot)`` as ``running``; the unique key keeps one
   row per slot. If the row exists and has not succeeded (it failed, or its runner died
   mid-run), the attempt count goes up instead.
2. *run* (one transaction): lock the row (``SELECT … FOR UPDATE``; SQLite's
   ``BEGIN IMMEDIATE`` locks the whole database), and unless it has succeeded meanwhile,
   call the job's service and mark the row ``succeeded``. The service's publication and the
   mark commit together: a crash rolls back both, a second runner waits on the lock and
   then finds the slot done.
3. on an error: mark the row ``failed`` with the error (retried later with backoff).

A lost connection to the database is not the job's failure: it propagates as
:class:`DatabaseUnavailable` and the runner retries the whole slot later.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from store.db import session_scope
from store.models import FAILED, RUNNING, SUCCEEDED, JobRun

log = logging.getLogger("bcpi.scheduler")

RETRY_BASE = dt.timedelta(seconds=5)
ERROR_LIMIT = 4000


class DatabaseUnavailable(Exception):
    """The database could not be reached; nothing about the slot is known to have changed."""


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


@dataclass(frozen=True)
class SlotState:
    outcome: str
    attempts: int
    finished_at: dt.datetime | None


def slot_states(
    session: Session, job: str, start: dt.datetime, end: dt.datetime
) -> dict[dt.datetime, SlotState]:
    rows = session.execute(
        select(JobRun.slot, JobRun.outcome, JobRun.attempts, JobRun.finished_at).where(
            JobRun.job == job, JobRun.slot >= start, JobRun.slot <= end
        )
    )
    return {
        slot: SlotState(outcome, attempts, finished) for slot, outcome, attempts, finished in rows
    }


def retry_delay(attempts: int, ceiling: dt.timedelta) -> dt.timedelta:
    return min(RETRY_BASE * 2 ** min(max(attempts - 1, 0), 20), ceiling)


def still_due(
    state: SlotState | None, now: dt.datetime, *, retry: bool, retry_ceiling: dt.timedelta
) -> bool:
    """Should this slot run (again)? Never after success; after a failure only if retried
    and its backoff has passed; always when ``running`` (its runner may have died: the
    fence makes a second run of a live one wait and then find it done)."""
    if state is None or state.outcome == RUNNING:
        return True
    if state.outcome == SUCCEEDED or not retry:
        return False
    finished = state.finished_at or now
    return now >= finished + retry_delay(state.attempts, retry_ceiling)


def pending(
    session: Session,
    job: str,
    slots: Iterable[dt.datetime],
    now: dt.datetime,
    *,
    retry: bool,
    retry_ceiling: dt.timedelta,
) -> list[dt.datetime]:
    slots = list(slots)
    if not slots:
        return []
    states = slot_states(session, job, slots[0], slots[-1])
    return [
        s for s in slots if still_due(states.get(s), now, retry=retry, retry_ceiling=retry_ceiling)
    ]


def _claim(
    engine: Engine, job: str, slot: dt.datetime, holder: str, now: dt.datetime
) -> int | None:
    """The run's id, or None when the slot has already succeeded."""
    with session_scope(engine) as session:
        dialect = session.get_bind().dialect.name
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        inserted = session.execute(
            insert(JobRun)
            .values(job=job, slot=slot, outcome=RUNNING, attempts=1, holder=holder, started_at=now)
            .on_conflict_do_nothing(index_elements=["job", "slot"])
            .returning(JobRun.id)
        ).scalar()
        if inserted is not None:
            return inserted
        return session.execute(
            update(JobRun)
            .where(JobRun.job == job, JobRun.slot == slot, JobRun.outcome != SUCCEEDED)
            .values(
                outcome=RUNNING,
                attempts=JobRun.attempts + 1,
                holder=holder,
                started_at=now,
                finished_at=None,
                error=None,
            )
            .returning(JobRun.id)
        ).scalar()


Body = Callable[[Session], dict[str, Any] | None]


@dataclass(frozen=True)
class RunRecord:
    job: str
    slot: dt.datetime
    outcome: str  # succeeded | failed | done_elsewhere
    seconds: float
    error: str | None = None
    detail: dict[str, Any] | None = None


def run_slot(
    engine: Engine,
    job: str,
    slot: dt.datetime,
    body: Body,
    *,
    holder: str,
    clock: Callable[[], dt.datetime],
) -> RunRecord:
    """Run one slot of one job under the fence (see the module's description)."""
    started = time.perf_counter()
    fields = {"job": job, "slot": slot.isoformat(), "holder": holder}
    try:
        run_id = _claim(engine, job, slot, holder, clock())
    except Exception as exc:
        if is_connection_error(exc):
            raise DatabaseUnavailable(str(exc)) from exc
        raise
    if run_id is None:
        return RunRecord(job, slot, "done_elsewhere", time.perf_counter() - started)
    try:
        with session_scope(engine) as session:
            row = session.execute(
                select(JobRun).where(JobRun.id == run_id).with_for_update()
            ).scalar_one()
            if row.outcome == SUCCEEDED:
                return RunRecord(job, slot, "done_elsewhere", time.perf_counter() - started)
            log.info(
                "job %s slot %s: attempt %d", job, slot.isoformat(), row.attempts, extra=fields
            )
            detail = body(session)
            row.outcome, row.finished_at, row.detail, row.holder = (
                SUCCEEDED,
                clock(),
                detail,
                holder,
            )
    except Exception as exc:
        if is_connection_error(exc):
            raise DatabaseUnavailable(str(exc)) from exc
        error = f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT]
        log.exception("job %s slot %s failed: %s", job, slot.isoformat(), error, extra=fields)
        try:
            with session_scope(engine) as session:
                session.execute(
                    update(JobRun)
                    .where(JobRun.id == run_id, JobRun.outcome != SUCCEEDED)
                    .values(outcome=FAILED, finished_at=clock(), error=error, holder=holder)
                )
        except Exception as record_exc:
            if is_connection_error(record_exc):
                raise DatabaseUnavailable(str(record_exc)) from record_exc
            raise
        return RunRecord(job, slot, FAILED, time.perf_counter() - started, error=error)
    seconds = time.perf_counter() - started
    log.info(
        "job %s slot %s succeeded in %.3fs",
        job,
        slot.isoformat(),
        seconds,
        extra={**fields, "seconds": round(seconds, 6), "detail": detail},
    )
    return RunRecord(job, slot, SUCCEEDED, seconds, detail=detail)
