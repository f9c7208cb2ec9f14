"""The scheduler process: APScheduler fires the jobs, only the elected leader runs them.

- Each job's calendar-aware trigger fires on time; the leader runs that job's due slots.
- On becoming leader (start-up, or takeover from a dead leader) it catches up every job
  inside its horizon, in order; a periodic catch-up repeats this as a safety net.
- When the database cannot be reached it logs, backs off exponentially and catches up
  once it answers again. A dead internal thread is logged and ends the process with a
  non-zero status, so the supervisor restarts it: it never dies silently.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from core.settings import Settings
from scheduler.jobs import Job
from scheduler.leader import Leadership, leadership_for
from scheduler.runner import Runner, utcnow
from scheduler.runs import DatabaseUnavailable
from scheduler.triggers import SlotTrigger
from store.db import session_scope
from store.models import SchedulerInstance

log = logging.getLogger("bcpi.scheduler")

INSTANCE_RETENTION = dt.timedelta(days=1)


class Backoff:
    def __init__(self, initial: float = 1.0, ceiling: float = 60.0) -> None:
        self.initial, self.ceiling, self.current = initial, ceiling, 0.0

    def next(self) -> float:
        self.current = min(self.ceiling, self.current * 2 if self.current else self.initial)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class SchedulerService:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        jobs: Iterable[Job] | None = None,
        leadership: Leadership | None = None,
        holder: str | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.engine, self.settings = engine, settings
        self.holder = holder or new_holder()
        self.runner = Runner(engine, settings, holder=self.holder, jobs=jobs, clock=clock)
        self.leadership = leadership or leadership_for(
            settings.database_url,
            settings.leader_database_url,
            heartbeat_seconds=settings.heartbeat_seconds,
            holder=self.holder,
        )
        self.started_at = utcnow()
        self.leader_since: dt.datetime | None = None
        self._leading = threading.Event()
        self._stop = threading.Event()
        self._db_backoff = Backoff(ceiling=max(60.0, settings.heartbeat_seconds))
        self._lock_backoff = Backoff(
            initial=settings.heartbeat_seconds, ceiling=max(60.0, settings.heartbeat_seconds)
        )
        self._retry_at = 0.0
        self.apscheduler = BackgroundScheduler(
            timezone=self.runner.calendar.zone,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        for job in self.runner.jobs:
            self.apscheduler.add_job(
                self._fire,
                trigger=SlotTrigger(self.runner.schedules[job.name]),
                args=([job.name],),
                id=job.name,
                name=job.name,
            )
        self.apscheduler.add_job(
            self._fire,
            trigger=IntervalTrigger(seconds=max(30.0, settings.heartbeat_seconds)),
            args=(None,),
            id="catch_up",
            name="catch-up of every job",
        )
        self._thread = threading.Thread(target=self._lead, name="bcpi-leader", daemon=True)

    # -- what others see -------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def get_jobs(self):
        return self.apscheduler.get_jobs()

    def catch_up(self) -> None:
        """Run every job's due slots now (what a new leader does first)."""
        self._fire(None)

    # -- running jobs ----------------------------------------------------------------------

    def _fire(self, names: list[str] | None) -> None:
        if not self._leading.is_set() or time.monotonic() < self._retry_at:
            return
        try:
            self.runner.run_due(names, should_continue=self._leading.is_set)
        except DatabaseUnavailable as exc:
            delay = self._db_backoff.next()
            self._retry_at = time.monotonic() + delay
            log.warning(
                "database unreachable (%s); catching up in %.0fs",
                exc,
                delay,
                extra={"retry_in_seconds": delay},
            )
            self.apscheduler.add_job(
                self._fire,
                "date",
                run_date=utcnow() + dt.timedelta(seconds=delay),
                args=(None,),
                id="catch_up_retry",
                replace_existing=True,
            )
            return
        except Exception:
            log.exception("scheduler: unexpected error while running jobs %s", names or "all")
            return
        self._db_backoff.reset()

    # -- leadership ------------------------------------------------------------------------

    def _become_leader(self) -> None:
        self.leader_since = utcnow()
        self._leading.set()
        log.info(
            "this scheduler leads (%s); catching up",
            self.leadership.description,
            extra={"holder": self.holder},
        )
        self._retry_at = 0.0
        self.apscheduler.add_job(self._fire, args=(None,), id="takeover", replace_existing=True)

    def _step_down(self, reason: str) -> None:
        if self._leading.is_set():
            log.warning("this scheduler no longer leads: %s", reason, extra={"holder": self.holder})
        self._leading.clear()
        self.leader_since = None
        try:
            self.leadership.release()
        except Exception as exc:
            log.warning("releasing leadership failed: %s", exc)

    def _lead(self) -> None:
        while not self._stop.is_set():
            wait = self.settings.heartbeat_seconds
            try:
                if self._leading.is_set():
                    if not self.leadership.still_held():
                        self._step_down(f"{self.leadership.description} lost")
                elif self.leadership.try_acquire():
                    self._become_leader()
                self._lock_backoff.reset()
            except Exception as exc:
                self._step_down(f"leader election failed: {exc}")
                wait = self._lock_backoff.next()
                log.warning(
                    "leader election unavailable (%s); retrying in %.1fs",
                    exc,
                    wait,
                    extra={"retry_in_seconds": wait},
                )
            try:
                self._heartbeat()
            except Exception as exc:
                log.warning("scheduler heartbeat not recorded: %s", exc)
            self._stop.wait(wait)

    def _heartbeat(self) -> None:
        now = utcnow()
        with session_scope(self.engine) as session:
            dialect = session.get_bind().dialect.name
            insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
            statement = insert(SchedulerInstance).values(
                holder=self.holder,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                started_at=self.started_at,
                heartbeat_at=now,
                leader_since=self.leader_since,
            )
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["holder"],
                    set_={"heartbeat_at": now, "leader_since": self.leader_since},
                )
            )
            session.execute(
                delete(SchedulerInstance).where(
                    SchedulerInstance.heartbeat_at < now - INSTANCE_RETENTION
                )
            )

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.apscheduler.start()
        self._thread.start()

    def shutdown(self, wait: bool = True) -> None:
        self._stop.set()
        self._leading.clear()
        if self._thread.is_alive():
            self._thread.join(timeout=max(5.0, self.settings.heartbeat_seconds * 2))
        if self.apscheduler.running:
            self.apscheduler.shutdown(wait=wait)
        self._step_down("shutting down")
        try:
            with session_scope(self.engine) as session:
                session.execute(
                    delete(SchedulerInstance).where(SchedulerInstance.holder == self.holder)
                )
        except Exception as exc:
            log.warning("could not remove this scheduler's heartbeat row: %s", exc)

    def healthy(self) -> str | None:
        """None, or what is broken inside this process."""
        if not self._thread.is_alive():
            return "the leader-election thread has stopped"
        thread = getattr(self.apscheduler, "_thread", None)
        if not self.apscheduler.running or (thread is not None and not thread.is_alive()):
            return "the APScheduler thread has stopped"
        return None

    def serve_forever(self) -> int:
        """Run until SIGTERM or SIGINT (exit 0) or until something inside breaks (exit 1)."""
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        calendar = self.runner.calendar
        log.info(
            "scheduler %s running jobs %s; fixing at %s %s (methodology %s)",
            self.holder,
            ", ".join(job.name for job in self.runner.jobs),
            calendar.fixing_time,
            calendar.zone.key,
            calendar.methodology.version,
            extra={"holder": self.holder},
        )
        calendar.status(calendar.today())  # logs a provisional year from 1 November before
        status = 0
        while not stop.wait(self.settings.heartbeat_seconds):
            broken = self.healthy()
            if broken:
                log.critical("scheduler stops: %s", broken, extra={"holder": self.holder})
                status = 1
                break
        self.shutdown(wait=status == 0)
        return status


def build_scheduler(engine: Engine, settings: Settings) -> SchedulerService:
    return SchedulerService(engine, settings)
