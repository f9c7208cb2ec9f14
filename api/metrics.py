"""Prometheus metrics: request counters kept by each worker, the rest read from the database.

Request counts and durations are counted in process; with several workers
(``bcpi serve --workers N``) they live in ``PROMETHEUS_MULTIPROC_DIR`` and every scrape
adds up all workers. Everything else (ingest counts, job runs and lag, publication lag,
the scheduler's heartbeat) is read from the database at scrape time, so any worker of any
replica answers the same.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.routing import Match

from core.calendar import Calendar
from core.settings import Settings
from publication.schedule import EVENTS, fixing_slots
from store import models
from store.models import FIXED, SUCCEEDED, JobRun, SchedulerInstance

REQUESTS = Counter(
    "bcpi_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
    registry=None,
)
REQUEST_SECONDS = Histogram(
    "bcpi_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    registry=None,
)


class RequestMetrics:
    """ASGI middleware counting every HTTP request by its route template (bounded labels)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = _route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            REQUEST_SECONDS.labels(scope["method"], route).observe(time.perf_counter() - started)


CONVERTOR = re.compile(r":\w+}")  # "{trade_id:path}" is labelled "{trade_id}", as in OpenAPI


def _route_template(scope) -> str:
    """The matched route's path template; a response given before routing (a cache, a
    guard) is matched here against the app's routes."""
    route = getattr(scope.get("route"), "path", None)
    if route:
        return CONVERTOR.sub("}", route)
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        # Included routers (FastAPI) expand into their effective routes.
        expand = getattr(candidate, "effective_route_contexts", None)
        for route in expand() if expand else (candidate,):
            template = getattr(route, "path", None)
            if template and route.matches(scope)[0] == Match.FULL:
                return CONVERTOR.sub("}", template)
    return "unmatched"


def _seconds(instant: dt.datetime | None) -> float | None:
    return instant.timestamp() if instant is not None else None


def expected_fixing(settings: Settings, calendar: Calendar, now: dt.datetime) -> dt.datetime | None:
    """The latest fixing slot that should have been published by ``now`` (with grace)."""
    grace = dt.timedelta(minutes=settings.fixing_overdue_minutes)
    return fixing_slots(settings, calendar).last_at_or_before(now - grace)


def last_fixed_date(session: Session) -> dt.date | None:
    return session.scalar(
        select(func.max(models.IndexValue.date)).where(
            models.IndexValue.superseded_at.is_(None), models.IndexValue.status.in_(FIXED)
        )
    )


def fixing_overdue(
    session: Session, settings: Settings, calendar: Calendar, now: dt.datetime
) -> tuple[bool, dict[str, object]]:
    """Is the latest due fixing missing? Published values or its succeeded run count."""
    expected = expected_fixing(settings, calendar, now)
    last_date = last_fixed_date(session)
    last_run = session.execute(
        select(JobRun.slot, JobRun.outcome, JobRun.finished_at)
        .where(JobRun.job == "fixing")
        .order_by(JobRun.slot.desc())
        .limit(1)
    ).first()
    expected_day = calendar.local_date(expected) if expected else None
    facts: dict[str, object] = {
        "expected_date": expected_day.isoformat() if expected_day else None,
        "last_fixed_date": last_date.isoformat() if last_date else None,
        "last_run": {
            "slot": last_run.slot.isoformat(),
            "outcome": last_run.outcome,
            "finished_at": last_run.finished_at.isoformat() if last_run.finished_at else None,
        }
        if last_run
        else None,
    }
    if expected is None or expected_day is None:
        return False, facts
    if last_date is not None and last_date >= expected_day:
        return False, facts
    ran = last_run is not None and last_run.slot >= expected and last_run.outcome == SUCCEEDED
    return not ran, facts


class DatabaseCollector:
    """Metrics read from the database at each scrape."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        settings: Settings,
        calendar: Calendar,
        now: dt.datetime,
    ) -> None:
        self.sessions, self.settings, self.calendar, self.now = sessions, settings, calendar, now

    def collect(self):
        up = GaugeMetricFamily("bcpi_database_up", "1 when the database answered this scrape")
        days_left = GaugeMetricFamily(
            "bcpi_calendar_days_to_horizon",
            "Days until the last day the publication calendar can vouch for",
        )
        today = self.calendar.local_date(self.now)
        days_left.add_metric([], (self.calendar.complete_through - today).days)
        yield days_left
        try:
            with self.sessions() as session:
                families = list(self._families(session))
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, session: Session):
        now = self.now
        ingest = CounterMetricFamily(
            "bcpi_ingest_rows",
            "Trade rows received, by exchange and outcome",
            labels=["exchange", "outcome"],
        )
        outcomes = {
            "accepted": models.IngestBatch.accepted,
            "duplicate": models.IngestBatch.duplicates,
            "rejected": models.IngestBatch.rejected,
            "held": models.IngestBatch.held,
            "revised": models.IngestBatch.revised,
        }
        for code, *sums in session.execute(
            select(
                models.Exchange.code,
                *(func.coalesce(func.sum(column), 0) for column in outcomes.values()),
            )
            .join(models.IngestBatch, models.IngestBatch.exchange_id == models.Exchange.id)
            .group_by(models.Exchange.code)
        ):
            for outcome, total in zip(outcomes, sums, strict=True):
                ingest.add_metric([code, outcome], total)
        yield ingest

        reasons = CounterMetricFamily(
            "bcpi_ingest_rejections",
            "Rejected trade rows, by exchange and reason code",
            labels=["exchange", "reason"],
        )
        totals: dict[tuple[str, str], int] = {}
        for code, by_reason in session.execute(
            select(models.Exchange.code, models.IngestBatch.rejections_by_reason)
            .join(models.IngestBatch, models.IngestBatch.exchange_id == models.Exchange.id)
            .where(models.IngestBatch.rejected > 0)
        ):
            for reason, count in (by_reason or {}).items():
                totals[(code, reason)] = totals.get((code, reason), 0) + int(count)
        for (code, reason), count in sorted(totals.items()):
            reasons.add_metric([code, reason], count)
        yield reasons

        slots = GaugeMetricFamily(
            "bcpi_job_runs", "Job slots by their current outcome", labels=["job", "outcome"]
        )
        attempts = CounterMetricFamily(
            "bcpi_job_attempts", "Attempts made at job slots", labels=["job"]
        )
        by_job: dict[str, int] = {}
        for job, outcome, count, tries in session.execute(
            select(JobRun.job, JobRun.outcome, func.count(), func.sum(JobRun.attempts)).group_by(
                JobRun.job, JobRun.outcome
            )
        ):
            slots.add_metric([job, outcome], count)
            by_job[job] = by_job.get(job, 0) + int(tries or 0)
        for job, tries in sorted(by_job.items()):
            attempts.add_metric([job], tries)
        yield slots
        yield attempts

        last_success = GaugeMetricFamily(
            "bcpi_job_last_success_timestamp_seconds",
            "When each job last succeeded",
            labels=["job"],
        )
        start_delay = GaugeMetricFamily(
            "bcpi_job_start_delay_seconds",
            "How long after its slot the job's latest run started",
            labels=["job"],
        )
        lag = GaugeMetricFamily(
            "bcpi_job_lag_seconds",
            "Age of the oldest slot inside the job's horizon not yet succeeded (0: up to date)",
            labels=["job"],
        )
        for job in EVENTS:
            finished = session.scalar(
                select(func.max(JobRun.finished_at)).where(
                    JobRun.job == job.name, JobRun.outcome == SUCCEEDED
                )
            )
            if finished is not None:
                last_success.add_metric([job.name], finished.timestamp())
            latest = session.execute(
                select(JobRun.slot, JobRun.started_at)
                .where(JobRun.job == job.name)
                .order_by(JobRun.slot.desc())
                .limit(1)
            ).first()
            if latest is not None:
                start_delay.add_metric(
                    [job.name], max(0.0, (latest.started_at - latest.slot).total_seconds())
                )
            schedule = job.slots(self.settings, self.calendar)
            due = list(schedule.slots(now - job.horizon(self.settings), now))
            done = (
                set(
                    session.scalars(
                        select(JobRun.slot).where(
                            JobRun.job == job.name,
                            JobRun.outcome == SUCCEEDED,
                            JobRun.slot >= due[0],
                            JobRun.slot <= due[-1],
                        )
                    )
                )
                if due
                else set()
            )
            missing = [slot for slot in due if slot not in done]
            lag.add_metric([job.name], (now - missing[0]).total_seconds() if missing else 0.0)
        yield last_success
        yield start_delay
        yield lag

        age = GaugeMetricFamily(
            "bcpi_index_publication_age_seconds",
            "Time since the latest index value of each status was published",
            labels=["status"],
        )
        for status, published in session.execute(
            select(models.IndexValue.status, func.max(models.IndexValue.published_at)).group_by(
                models.IndexValue.status
            )
        ):
            age.add_metric([status], max(0.0, (now - published).total_seconds()))
        yield age

        delay = GaugeMetricFamily(
            "bcpi_fixing_publication_delay_seconds",
            "From the fixing time to the first final value of the latest fixed day",
        )
        last_day = last_fixed_date(session)
        if last_day is not None:
            first_final = session.scalar(
                select(func.min(models.IndexValue.published_at)).where(
                    models.IndexValue.date == last_day, models.IndexValue.status == "final"
                )
            )
            fixing_instant = self.calendar.fixing_at(last_day)
            if first_final is not None:
                delay.add_metric([], (first_final - fixing_instant).total_seconds())
        yield delay

        overdue, _ = fixing_overdue(session, self.settings, self.calendar, now)
        flag = GaugeMetricFamily("bcpi_fixing_overdue", "1 when the latest due fixing is missing")
        flag.add_metric([], int(overdue))
        yield flag

        instances = session.execute(
            select(SchedulerInstance.heartbeat_at, SchedulerInstance.leader_since)
        ).all()
        alive_after = now - dt.timedelta(seconds=3 * self.settings.heartbeat_seconds)
        alive = GaugeMetricFamily(
            "bcpi_scheduler_instances", "Scheduler processes with a recent heartbeat"
        )
        alive.add_metric([], sum(1 for beat, _ in instances if beat >= alive_after))
        yield alive
        leader_age = GaugeMetricFamily(
            "bcpi_scheduler_leader_heartbeat_age_seconds",
            "Time since the leading scheduler's last heartbeat",
        )
        leader_beats = [beat for beat, since in instances if since is not None]
        if leader_beats:
            leader_age.add_metric([], max(0.0, (now - max(leader_beats)).total_seconds()))
        yield leader_age


def exposition(sessions: Callable[[], Session], settings: Settings, calendar: Calendar) -> bytes:
    """The text a Prometheus scrape gets."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(REQUESTS)
        registry.register(REQUEST_SECONDS)
    registry.register(DatabaseCollector(sessions, settings, calendar, dt.datetime.now(dt.UTC)))
    return generate_latest(registry)
