"""Run every due slot of every job, in order, under the exactly-once fence.

:meth:`Runner.run_due` is the one way slots run: a trigger firing on time, catch-up after
downtime and a takeover by a new leader all call it, and it runs each job's slots inside
the job's horizon that have not succeeded (the interrupted and the failed-and-due
included), oldest first. A simulated clock drives it in tests.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from core.calendar import Calendar
from core.errors import BcpiError
from core.methodology import in_force
from core.settings import Settings
from publication.schedule import Slots
from scheduler.jobs import JOBS, Job, JobContext
from scheduler.runs import (
    DatabaseUnavailable,
    RunRecord,
    is_connection_error,
    pending,
    run_slot,
)
from store.db import session_scope
from store.methodology_versions import load_versions

log = logging.getLogger("bcpi.scheduler")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def configured_jobs(settings: Settings) -> tuple[Job, ...]:
    """Every job, or those named by ``BCPI_SCHEDULER_JOBS``."""
    if not settings.scheduler_jobs:
        return JOBS
    names = {job.name for job in JOBS}
    unknown = sorted(set(settings.scheduler_jobs) - names)
    if unknown:
        raise BcpiError(
            f"BCPI_SCHEDULER_JOBS names unknown jobs {unknown}; jobs are {sorted(names)}",
            field="scheduler_jobs",
        )
    return tuple(job for job in JOBS if job.name in settings.scheduler_jobs)


class Runner:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        holder: str,
        jobs: Iterable[Job] | None = None,
        calendar: Calendar | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.engine, self.settings, self.holder, self.clock = engine, settings, holder, clock
        self.calendar = calendar or Calendar.from_settings(settings)
        self._follows_versions = calendar is None
        self.jobs = tuple(jobs if jobs is not None else configured_jobs(settings))
        self.schedules: dict[str, Slots] = {
            job.name: job.event.slots(settings, self.calendar) for job in self.jobs
        }
        self._retry_ceiling = dt.timedelta(seconds=settings.job_retry_max_seconds)

    def job(self, name: str) -> Job:
        return next(job for job in self.jobs if job.name == name)

    def due(
        self, now: dt.datetime, names: Iterable[str] | None = None
    ) -> list[tuple[dt.datetime, Job]]:
        """Slots not yet done inside each job's horizon, oldest first (ties: job order)."""
        wanted = set(names) if names is not None else None
        todo: list[tuple[dt.datetime, int, Job]] = []
        try:
            with session_scope(self.engine) as session:
                for order, job in enumerate(self.jobs):
                    if wanted is not None and job.name not in wanted:
                        continue
                    horizon = job.event.horizon(self.settings)
                    slots = self.schedules[job.name].slots(now - horizon, now)
                    due = pending(
                        session,
                        job.name,
                        slots,
                        now,
                        retry=job.event.retry,
                        retry_ceiling=self._retry_ceiling,
                    )
                    todo.extend((slot, order, job) for slot in due)
        except Exception as exc:
            if is_connection_error(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            raise
        todo.sort(key=lambda item: (item[0], item[1]))
        return [(slot, job) for slot, _, job in todo]

    def run_due(
        self,
        names: Iterable[str] | None = None,
        *,
        now: dt.datetime | None = None,
        should_continue: Callable[[], bool] = lambda: True,
    ) -> list[RunRecord]:
        """Run what is due at ``now``; stops early once ``should_continue`` says so."""
        now = now or self.clock()
        records = []
        for slot, job in self.due(now, names):
            if not should_continue():
                break
            records.append(self.run(job, slot))
        return records

    def _calendar_for(self, session, slot: dt.datetime) -> Calendar:
        """The calendar under the version in force on the slot's day, as the database knows
        the versions now (an operator may have adopted one since this process started)."""
        if not self._follows_versions:
            return self.calendar
        load_versions(session)
        return self.calendar.under(in_force(self.calendar.local_date(slot)))

    def run(self, job: Job, slot: dt.datetime) -> RunRecord:
        def body(session):
            context = JobContext(
                slot, self.clock(), self.settings, self._calendar_for(session, slot)
            )
            return job.body(session, context)

        return run_slot(self.engine, job.name, slot, body, holder=self.holder, clock=self.clock)
