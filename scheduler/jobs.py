"""Scheduled jobs: each publication event of :mod:`publication.schedule` with its body. Each
body is thin (the session is open, call the service). The runner (:mod:`scheduler.runner`)
wraps every slot in the exactly-once fence of :mod:`scheduler.runs`. The fixing, and the
sweep after it, run at each day's own fixing instant: the cut-off plus the reporting grace
of the version in force that day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.errors import FixingTooEarly
from core.settings import Settings
from publication.fixing import compute
from publication.intraday import publish_provisional
from publication.rebalance import announce_once, apply
from publication.restatement import sweep
from publication.schedule import EVENTS, Event

log = logging.getLogger("bcpi.scheduler")


@dataclass(frozen=True)
class JobContext:
    slot: dt.datetime  # the instant the run is for (UTC)
    now: dt.datetime  # the instant it runs: published values carry it
    settings: Settings
    calendar: Calendar

    @property
    def day(self) -> dt.date:
        """The slot's local day."""
        return self.calendar.local_date(self.slot)


@dataclass(frozen=True)
class Job:
    event: Event
    body: Callable[[Session, JobContext], dict[str, Any] | None]

    @property
    def name(self) -> str:
        return self.event.name


def _counts(counts: Any) -> dict[str, int]:
    fields = dataclasses.asdict(counts) if dataclasses.is_dataclass(counts) else {}
    return {name: value for name, value in fields.items() if isinstance(value, int)}


# -- intraday provisional values ---------------------------------------------------------


def intraday(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Provisional values from the trades up to the slot, observed at the slot."""
    report = publish_provisional(session, ctx.slot, calendar=ctx.calendar)
    return {
        "date": report.day.isoformat(),
        "fixed": report.fixed,
        "trades": report.trades,
        "assessments": _counts(report.assessments),
        "index_values": _counts(report.index_values),
        "observations": report.observations,
    }


# -- daily fixing --------------------------------------------------------------------------


def fixing(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Assess the slot's publication day and publish every index as final, once the
    reporting grace after its cut-off has passed."""
    due = ctx.calendar.fixing_at(ctx.day)
    if ctx.now < due:
        raise FixingTooEarly(
            f"the fixing of {ctx.day} is due at {due.isoformat()} (the cut-off and the"
            f" reporting grace); it ran at {ctx.now.isoformat()}",
            day=ctx.day.isoformat(),
        )
    report = compute(session, ctx.day, ctx.day, now=ctx.now, calendar=ctx.calendar)
    if ctx.day in report.pending_days:
        # Run before the day's window closed (a clock behind): fail, so a retry fixes it.
        raise FixingTooEarly(
            f"the assessment window of {ctx.day} was still open at {ctx.now.isoformat()}",
            day=ctx.day.isoformat(),
        )
    return {
        "date": ctx.day.isoformat(),
        "trades": report.trades,
        "assessments": _counts(report.assessments),
        "index_values": _counts(report.index_values),
        "skipped": report.skipped,
        "fallbacks": report.fallbacks,
        "closed": ctx.day in report.closed_days,
    }


# -- restatement sweep ---------------------------------------------------------------------


def restatement_sweep(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Recompute the correction window; restate what changed, with correction notices."""
    report = sweep(session, ctx.now, calendar=ctx.calendar)
    return {
        "window": [report.window_start.isoformat(), report.window_end.isoformat()],
        "marks": report.marks,
        "expired": report.expired,
        "corrections": len(report.corrections),
    }


# -- annual rebalance ----------------------------------------------------------------------


def rebalance_announce(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Compute next year's weights and publish them as announced."""
    return _summary(announce_once(session, ctx.day.year + 1, ctx.now, calendar=ctx.calendar))


def rebalance_apply(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Put the announced weights in force from the effective date."""
    return _summary(apply(session, ctx.day, ctx.now, calendar=ctx.calendar))


def _summary(result: Any) -> Any:
    """A JSON-able account of what a service returned."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {
            k: _summary(v)
            for k, v in dataclasses.asdict(result).items()
            if isinstance(v, str | int | float | bool | dict | list | dt.date | type(None))
        }
    if isinstance(result, dict):
        return {str(k): _summary(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [_summary(v) for v in result][:100]
    if isinstance(result, dt.date | dt.datetime):
        return result.isoformat()
    if isinstance(result, str | int | float | bool) or result is None:
        return result
    return str(result)


BODIES: dict[str, Callable[[Session, JobContext], dict[str, Any] | None]] = {
    "rebalance_apply": rebalance_apply,
    "intraday": intraday,
    "fixing": fixing,
    "restatement_sweep": restatement_sweep,
    "rebalance_announce": rebalance_announce,
}
JOBS: tuple[Job, ...] = tuple(Job(event, BODIES[event.name]) for event in EVENTS)
