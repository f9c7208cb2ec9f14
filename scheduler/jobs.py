"""Thin jobs: open a session, call the service. Each trigger stands next to its job."""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from bcpi.settings import Settings
from index.service import ComputeReport, compute
from store.db import session_scope

log = logging.getLogger("bcpi.scheduler")


def fixing_trigger(settings: Settings) -> CronTrigger:
    """Weekdays at the fixing time, Beijing time."""
    return CronTrigger(
        day_of_week="mon-fri",
        hour=settings.fixing_time.hour,
        minute=settings.fixing_time.minute,
        second=settings.fixing_time.second,
        timezone=settings.zone,
    )


def daily_fixing(
    engine: Engine, settings: Settings, now: dt.datetime | None = None
) -> ComputeReport:
    """Assess today's trades (Beijing date) and publish every index."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(settings.zone).date()
    with session_scope(engine) as session:
        report = compute(session, today, today, now=now)
    log.info(
        "fixing %s: %d trades, %d assessments, %d index values published",
        today,
        report.trades,
        report.assessments.new + report.assessments.restated,
        report.index_values.new + report.index_values.restated,
    )
    return report
