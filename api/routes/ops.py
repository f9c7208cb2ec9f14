"""Operations: readiness, Prometheus metrics and the scheduler's job runs (admin key)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Any

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.auth import AdminPrincipal
from api.metrics import RequestMetrics, exposition, fixing_overdue
from api.params import instant
from bcpi.calendar import TradingCalendar, calendar_from_settings
from bcpi.errors import BcpiError
from bcpi.settings import Settings
from scheduler.jobs import JOBS
from store.migrate import head_revisions
from store.models_ops import JobRun, SchedulerInstance

router = APIRouter(tags=["operations"])


def _sessions(request: Request):
    """Reads go through the read engine where the app has one (no write lock on SQLite)."""
    return getattr(request.app.state, "read_sessions", None) or request.app.state.sessions


def _read_session(request: Request):
    with _sessions(request)() as session:
        yield session


ReadSession = Annotated[Session, Depends(_read_session)]


@functools.cache
def _heads() -> frozenset[str]:
    return frozenset(head_revisions())


def _calendar(request: Request) -> TradingCalendar:
    return request.app.state.trading_calendar


@router.get(
    "/readyz",
    summary="Ready: database, migrations, last fixing",
    responses={503: {"description": "not ready: the failing checks are named"}},
)
def readyz(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    calendar = _calendar(request)
    now = dt.datetime.now(dt.UTC)
    checks: dict[str, dict[str, Any]] = {}
    try:
        with _sessions(request)() as session:
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
    checks["calendar"] = {"ok": True, **calendar.status(now.astimezone(settings.zone).date())}
    ready = all(check["ok"] for check in checks.values()) and len(checks) == 4
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    body = exposition(_sessions(request), request.app.state.settings, _calendar(request))
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
    request: Request,
    session: ReadSession,
    _admin: AdminPrincipal,
    job: Annotated[str | None, Query(description="Only this job")] = None,
    outcome: Annotated[
        str | None, Query(pattern="^(running|succeeded|failed)$", description="Only this outcome")
    ] = None,
    since: Annotated[dt.datetime | None, Query(description="Slots from this instant")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OpsJobs:
    settings: Settings = request.app.state.settings
    calendar = _calendar(request)
    names = [j.name for j in JOBS]
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
    for spec in JOBS:
        trigger = spec.trigger(settings, calendar)
        last = session.scalar(
            select(JobRun).where(JobRun.job == spec.name).order_by(JobRun.slot.desc()).limit(1)
        )
        upcoming = trigger.first_at_or_after(now)
        jobs.append(
            JobOut(
                job=spec.name,
                trigger=str(trigger),
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
    app.state.trading_calendar = calendar_from_settings(settings)
    app.add_middleware(RequestMetrics)
    app.include_router(router)
