"""Operations: readiness, Prometheus metrics and the scheduler's job runs (admin key)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Any

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import select, text

from api.auth import MetricsPrincipal, OverseerPrincipal
from api.deps import CalendarDep, ReadSessionDep, SettingsDep
from api.metrics import RequestMetrics, exposition, fixing_overdue
from api.params import instant
from core.errors import BcpiError
from core.settings import Settings
from publication.schedule import EVENTS
from store.migrate import head_revisions
from store.models import JobRun, SchedulerInstance

router = APIRouter(tags=["operations"])


@functools.cache
def _heads() -> frozenset[str]:
    return frozenset(head_revisions())


@router.get(
    "/readyz",
    summary="Ready: database, migrations, last fixing",
    responses={503: {"description": "not ready: the failing checks are named"}},
)
def readyz(request: Request, settings: SettingsDep, calendar: CalendarDep) -> JSONResponse:
    now = dt.datetime.now(dt.UTC)
    checks: dict[str, dict[str, Any]] = {}
    try:
        with request.app.state.read_sessions() as session:
            session.execute(text("SELECT 1"))
            checks["database"] = {"ok": True}
            current = set(MigrationContext.configure(session.connection()).get_current_heads())
            heads = _heads()
            checks["migrations"] = {
                "ok": current == heads,
                "current": sorted(current),
                "heads": sorted(heads),
            }
            overdue, facts = fixing_overdue(session, settings, calendar, now)
            checks["fixing"] = {"ok": not overdue, **facts}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    checks["calendar"] = {"ok": True, **calendar.status(calendar.local_date(now))}
    ready = all(check["ok"] for check in checks.values()) and len(checks) == 4
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(
    request: Request, settings: SettingsDep, calendar: CalendarDep, _: MetricsPrincipal
) -> Response:
    """The Prometheus exposition; needs an admin or ``metrics`` key (the scraper's bearer
    token)."""
    body = exposition(request.app.state.read_sessions, settings, calendar)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class JobRunOut(BaseModel):
    job: str
    slot: dt.datetime
    outcome: str
    attempts: int
    holder: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    seconds: float | None
    error: str | None
    detail: dict[str, Any] | None


class JobOut(BaseModel):
    job: str
    trigger: str
    next_slot: dt.datetime | None
    last_run: JobRunOut | None


class SchedulerOut(BaseModel):
    holder: str
    hostname: str
    pid: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    alive: bool
    leader: bool
    leader_since: dt.datetime | None


class OpsJobs(BaseModel):
    now: dt.datetime
    schedulers: list[SchedulerOut]
    jobs: list[JobOut]
    runs: list[JobRunOut]


def _run_out(row: JobRun) -> JobRunOut:
    seconds = (row.finished_at - row.started_at).total_seconds() if row.finished_at else None
    return JobRunOut(
        job=row.job,
        slot=row.slot,
        outcome=row.outcome,
        attempts=row.attempts,
        holder=row.holder,
        started_at=row.started_at,
        finished_at=row.finished_at,
        seconds=seconds,
        error=row.error,
        detail=row.detail,
    )


@router.get(
    "/v1/ops/jobs",
    response_model=OpsJobs,
    responses={400: {"description": "no such job, or since without a timezone"}},
    summary="Scheduler processes, each job's next slot and the latest runs (admin key)",
)
def ops_jobs(
    session: ReadSessionDep,
    settings: SettingsDep,
    calendar: CalendarDep,
    _overseer: OverseerPrincipal,
    job: Annotated[str | None, Query(description="Only this job")] = None,
    outcome: Annotated[
        str | None, Query(pattern="^(running|succeeded|failed)$", description="Only this outcome")
    ] = None,
    since: Annotated[dt.datetime | None, Query(description="Slots from this instant")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OpsJobs:
    names = [e.name for e in EVENTS]
    if job is not None and job not in names:
        raise BcpiError(f"no job {job!r}; jobs are {', '.join(names)}", job=job)
    if since is not None and since.tzinfo is None:
        raise BcpiError("since needs a timezone (e.g. 2026-11-26T00:00:00+08:00)", field="since")
    since = instant("since", since)  # a year the database can store, or 422
    now = dt.datetime.now(dt.UTC)
    alive_after = now - dt.timedelta(seconds=3 * settings.heartbeat_seconds)
    schedulers = [
        SchedulerOut(
            holder=row.holder,
            hostname=row.hostname,
            pid=row.pid,
            started_at=row.started_at,
            heartbeat_at=row.heartbeat_at,
            alive=row.heartbeat_at >= alive_after,
            leader=row.leader_since is not None and row.heartbeat_at >= alive_after,
            leader_since=row.leader_since,
        )
        for row in session.scalars(select(SchedulerInstance).order_by(SchedulerInstance.started_at))
    ]
    jobs = []
    for spec in EVENTS:
        schedule = spec.slots(settings, calendar)
        last = session.scalar(
            select(JobRun).where(JobRun.job == spec.name).order_by(JobRun.slot.desc()).limit(1)
        )
        upcoming = schedule.first_at_or_after(now)
        jobs.append(
            JobOut(
                job=spec.name,
                trigger=str(schedule),
                next_slot=upcoming.astimezone(dt.UTC) if upcoming else None,
                last_run=_run_out(last) if last else None,
            )
        )
    query = select(JobRun)
    if job is not None:
        query = query.where(JobRun.job == job)
    if outcome is not None:
        query = query.where(JobRun.outcome == outcome)
    if since is not None:
        query = query.where(JobRun.slot >= since)
    runs = [
        _run_out(row)
        for row in session.scalars(
            query.order_by(JobRun.slot.desc(), JobRun.id.desc()).limit(limit)
        )
    ]
    return OpsJobs(now=now, schedulers=schedulers, jobs=jobs, runs=runs)


def install_operations(app: FastAPI, settings: Settings) -> None:
    """Readiness, metrics, job runs, and request metrics for every route."""
    app.add_middleware(RequestMetrics)
    app.include_router(router)
