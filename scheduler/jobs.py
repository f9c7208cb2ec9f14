"""Scheduled jobs. Each body is thin (the session is open, call the service); each trigger
stands next to its job. The runner (:mod:`scheduler.runner`) wraps every slot in the
exactly-once fence of :mod:`scheduler.runs`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bcpi.calendar import TradingCalendar, parse_sessions
from bcpi.errors import BcpiError
from bcpi.settings import Settings
from index.intraday import publish_provisional
from index.methodology import in_force
from index.rebalance import announce, apply, schedule
from index.restatement import sweep
from index.service import compute
from scheduler.triggers import DailyTrigger, SessionIntervalTrigger, SlotTrigger, UnionTrigger

log = logging.getLogger("bcpi.scheduler")


class FixingTooEarly(BcpiError):
    status_code = 409


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


def _counts(counts: Any) -> dict[str, int]:
    return dataclasses.asdict(counts) if dataclasses.is_dataclass(counts) else {}


def _time_offset(moment: dt.time) -> dt.timedelta:
    return dt.timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)


def _catchup(settings: Settings) -> dt.timedelta:
    return dt.timedelta(days=settings.catchup_horizon_days)


# -- intraday provisional values ---------------------------------------------------------


def intraday_trigger(settings: Settings, calendar: TradingCalendar) -> SlotTrigger:
    """Every intraday interval (the methodology's, unless set) in the trading hours of
    trading days."""
    seconds = settings.intraday_interval_seconds or in_force().intraday.interval_seconds
    return SessionIntervalTrigger(
        parse_sessions(settings.trading_hours),
        dt.timedelta(seconds=seconds),
        calendar.is_trading_day,
        settings.zone,
    )


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


def fixing_trigger(settings: Settings, calendar: TradingCalendar) -> SlotTrigger:
    """The fixing time, local, on trading days only."""
    return DailyTrigger(
        _time_offset(settings.fixing_time), calendar.is_trading_day, settings.zone, "fixing"
    )


def fixing(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Assess the slot's trading day and publish every index as final."""
    report = compute(session, ctx.day, ctx.day, now=ctx.now, calendar=ctx.calendar)
    if ctx.day in report.pending_days:
        # Fixing before the methodology's cut-off: fail, so that a retry fixes the day.
        raise FixingTooEarly(
            f"the assessment window of {ctx.day} was still open at {ctx.now.isoformat()}: "
            "BCPI_FIXING_TIME is earlier than the methodology's cut-off",
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
    report = sweep(session, ctx.now, window_days=ctx.settings.correction_window_days)
    return {
        "window": [report.window_start.isoformat(), report.window_end.isoformat()],
        "marks": report.marks,
        "expired": report.expired,
        "corrections": len(report.corrections),
    }


# -- annual rebalance ----------------------------------------------------------------------


def _rebalance_trigger(settings: Settings, calendar: TradingCalendar, which: int, label: str):
    """On the first trading day from the methodology's announcement (``which`` = 0) or
    effective (1) date, at ``rebalance_time``. A day announces next year's weights."""

    def qualifies(day: dt.date) -> bool:
        year = day.year + 1 if which == 0 else day.year
        return day == calendar.next_trading_day(schedule(year)[which])

    return DailyTrigger(_time_offset(settings.rebalance_time), qualifies, settings.zone, label)


def announce_trigger(settings: Settings, calendar: TradingCalendar) -> SlotTrigger:
    return _rebalance_trigger(settings, calendar, 0, "rebalance announcement")


def rebalance_announce(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Compute next year's weights and publish them as announced."""
    return _summary(announce(session, ctx.day.year + 1, ctx.now))


def apply_trigger(settings: Settings, calendar: TradingCalendar) -> SlotTrigger:
    return _rebalance_trigger(settings, calendar, 1, "rebalance effective date")


def rebalance_apply(session: Session, ctx: JobContext) -> dict[str, Any]:
    """Put the announced weights in force from the effective date."""
    return _summary(apply(session, ctx.day, ctx.now))


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


# In order of precedence when two jobs share a slot.
JOBS: tuple[Job, ...] = (
    Job(
        "rebalance_apply",
        rebalance_apply,
        apply_trigger,
        lambda s: max(_catchup(s), dt.timedelta(days=31)),
    ),
    Job(
        "intraday",
        intraday,
        intraday_trigger,
        lambda s: dt.timedelta(seconds=s.intraday_catchup_seconds),
        retry=False,
    ),
    Job("fixing", fixing, fixing_trigger, _catchup),
    Job("restatement_sweep", restatement_sweep, sweep_trigger, _catchup),
    Job(
        "rebalance_announce",
        rebalance_announce,
        announce_trigger,
        lambda s: max(_catchup(s), dt.timedelta(days=31)),
    ),
)
