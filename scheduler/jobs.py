"""Scheduled jobs. Each body is thin (the session is open, call the service); each trigger
stands next to its job. The runner (:mod:`scheduler.runner`) wraps every slot in the
exactly-once fence of :mod:`scheduler.runs`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bcpi.calendar import TradingCalendar, parse_sessions
from bcpi.settings import Settings
from index.service import compute
from scheduler.triggers import DailyTrigger, SessionIntervalTrigger, SlotTrigger, UnionTrigger

log = logging.getLogger("bcpi.scheduler")


@dataclass(frozen=True)
class JobContext:
    slot: dt.datetime  # the instant the run is for (UTC)
    now: dt.datetime  # the instant it runs: published values carry it
    settings: Settings
    calendar: TradingCalendar

    @property
    def day(self) -> dt.date:
        """The slot's local trading day."""
        return self.slot.astimezone(self.settings.zone).date()


@dataclass(frozen=True)
class Job:
    name: str
    body: Callable[[Session, JobContext], dict[str, Any] | None]
    trigger: Callable[[Settings, TradingCalendar], SlotTrigger]
    horizon: Callable[[Settings], dt.timedelta]
    retry: bool = True  # retry a failed slot (with backoff) while inside the horizon
    service: str | None = None  # module the body needs; the job is off until it exists


def _counts(counts: Any) -> dict[str, int]:
    return dataclasses.asdict(counts) if dataclasses.is_dataclass(counts) else {}


def _time_offset(moment: dt.time) -> dt.timedelta:
    return dt.timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)


def _first_trading_day_from(calendar: TradingCalendar, year: int, month_day: str) -> dt.date:
    month, day = (int(part) for part in month_day.split("-"))
    return calendar.next_trading_day(dt.date(year, month, day))


def _catchup(settings: Settings) -> dt.timedelta:
    return dt.timedelta(days=settings.catchup_horizon_days)


# -- intraday provisional values ---------------------------------------------------------


def intraday_trigger(settings: Settings, calendar: TradingCalendar) -> SlotTrigger:
    """Every ``intraday_interval_seconds`` during the trading hours of trading days."""
    return SessionIntervalTrigger(
        parse_sessions(settings.trading_hours),
        dt.timedelta(seconds=settings.intraday_interval_seconds),
        calendar.is_trading_day,
        settings.zone,
    )


def intraday(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Provisional values from the trades up to the slot."""
    from index.intraday import publish_provisional

    return {"published": _summary(publish_provisional(session, ctx.slot))}


# -- daily fixing --------------------------------------------------------------------------


def fixing_trigger(settings: Settings, calendar: TradingCalendar) -> SlotTrigger:
    """The fixing time, local, on trading days only."""
    return DailyTrigger(
        _time_offset(settings.fixing_time), calendar.is_trading_day, settings.zone, "fixing"
    )


def fixing(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Assess the slot's trading day and publish every index as final."""
    report = compute(session, ctx.day, ctx.day, now=ctx.now)
    return {
        "date": ctx.day.isoformat(),
        "trades": report.trades,
        "assessments": _counts(report.assessments),
        "index_values": _counts(report.index_values),
        "skipped": report.skipped,
    }


# -- restatement sweep ---------------------------------------------------------------------


def sweep_trigger(settings: Settings, calendar: TradingCalendar) -> SlotTrigger:
    """After each fixing, and the next morning."""
    after_fixing = _time_offset(settings.fixing_time) + dt.timedelta(
        minutes=settings.sweep_delay_minutes
    )
    morning = dt.timedelta(days=1) + _time_offset(settings.sweep_morning_time)
    return UnionTrigger(
        DailyTrigger(after_fixing, calendar.is_trading_day, settings.zone, "after the fixing"),
        DailyTrigger(morning, calendar.is_trading_day, settings.zone, "the morning after"),
    )


def restatement_sweep(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Recompute the correction window; restate what changed, with correction notices."""
    from index.restatement import sweep

    report = sweep(session, ctx.now, window_days=ctx.settings.correction_window_days)
    return {
        "window": [report.window_start.isoformat(), report.window_end.isoformat()],
        "marks": report.marks,
        "expired": report.expired,
        "corrections": len(report.corrections),
    }


# -- annual rebalance ----------------------------------------------------------------------


def announce_trigger(settings: Settings, calendar: TradingCalendar) -> SlotTrigger:
    def announcement_day(day: dt.date) -> bool:
        return day == _first_trading_day_from(calendar, day.year, settings.rebalance_announcement)

    return DailyTrigger(
        _time_offset(settings.rebalance_time), announcement_day, settings.zone, "announcement"
    )


def rebalance_announce(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Compute next year's weights and publish them as announced."""
    from index.rebalance import announce

    return {
        "year": ctx.day.year + 1,
        "result": _summary(announce(session, ctx.day.year + 1, ctx.now)),
    }


def apply_trigger(settings: Settings, calendar: TradingCalendar) -> SlotTrigger:
    def effective_day(day: dt.date) -> bool:
        return day == _first_trading_day_from(calendar, day.year, settings.rebalance_effective)

    return DailyTrigger(
        _time_offset(settings.rebalance_time), effective_day, settings.zone, "effective date"
    )


def rebalance_apply(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Put the announced weights in force from the effective date."""
    from index.rebalance import apply

    return {
        "effective_date": ctx.day.isoformat(),
        "result": _summary(apply(session, ctx.day, ctx.now)),
    }


def _summary(result: Any) -> Any:
    """A JSON-able account of what a service returned."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {
            k: _summary(v)
            for k, v in dataclasses.asdict(result).items()
            if isinstance(v, str | int | float | bool | dict | list | type(None))
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


# In order of precedence when two jobs share a slot.
JOBS: tuple[Job, ...] = (
    Job(
        "rebalance_apply",
        rebalance_apply,
        apply_trigger,
        lambda s: max(_catchup(s), dt.timedelta(days=31)),
        service="index.rebalance",
    ),
    Job(
        "intraday",
        intraday,
        intraday_trigger,
        lambda s: dt.timedelta(seconds=s.intraday_catchup_seconds),
        retry=False,
        service="index.intraday",
    ),
    Job("fixing", fixing, fixing_trigger, _catchup),
    Job(
        "restatement_sweep", restatement_sweep, sweep_trigger, _catchup, service="index.restatement"
    ),
    Job(
        "rebalance_announce",
        rebalance_announce,
        announce_trigger,
        lambda s: max(_catchup(s), dt.timedelta(days=31)),
        service="index.rebalance",
    ),
)


def available_jobs(jobs: tuple[Job, ...] = JOBS) -> tuple[Job, ...]:
    """The jobs whose service is installed (each missing one is logged)."""
    out = []
    for job in jobs:
        if job.service and importlib.util.find_spec(job.service) is None:
            log.warning("job %s is off: its service %s is not installed", job.name, job.service)
            continue
        out.append(job)
    return tuple(out)
