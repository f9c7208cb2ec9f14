"""Build the APScheduler instance with every job and its trigger."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from bcpi.settings import Settings
from scheduler.jobs import daily_fixing, fixing_trigger


def build_scheduler(engine: Engine, settings: Settings) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=settings.zone)
    scheduler.add_job(
        daily_fixing,
        trigger=fixing_trigger(settings),
        args=(engine, settings),
        id="daily_fixing",
        name="Daily fixing",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    return scheduler
