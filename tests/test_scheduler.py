"""Schedules: each job's slots follow the publication calendar (the mainland exchange
days), both forwards and backwards. Until 30 November 2026 methodology 2025.2 is in force:
the fixing is at the cut-off, 15:00 (tests/test_reporting_grace.py: the grace of 2026.1)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from core.calendar import Calendar
from core.methodology import in_force
from core.settings import Settings
from publication.schedule import announce_slots, apply_slots, intraday_slots
from scheduler.jobs import JOBS
from scheduler.service import SchedulerService
from scheduler.triggers import SlotTrigger
from store.db import make_engine

BEIJING = ZoneInfo("Asia/Shanghai")
CALENDAR = Calendar(in_force())


def calendar_for(settings: Settings) -> Calendar:
    """The publication calendar with the settings' trading sessions."""
    return Calendar(in_force(), sessions=settings.sessions)


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=BEIJING)


def scheduled(name: str, settings: Settings):
    """The slots the scheduler runs job ``name`` at."""
    return next(job for job in JOBS if job.name == name).event.slots(settings, CALENDAR)


def test_fixing_fires_at_the_cut_off_on_publication_days_only():
    schedule = scheduled("fixing", Settings())
    trigger = SlotTrigger(schedule)
    # After the last fixing before National Day, the next is on 8 October.
    assert trigger.get_next_fire_time(None, at(2026, 9, 30, 15, 0, 1)) == at(2026, 10, 8, 15)
    # A make-up Saturday (10 October) is a working day, but the exchanges are shut: not a
    # publication day under the mainland calendar, nor is the Sunday after it.
    assert trigger.get_next_fire_time(at(2026, 10, 9, 15), at(2026, 10, 9, 15)) == at(
        2026, 10, 12, 15
    )
    assert trigger.get_next_fire_time(None, at(2026, 10, 10, 16)) == at(2026, 10, 12, 15)
    assert schedule.last_at_or_before(at(2026, 10, 7, 23)) == at(2026, 9, 30, 15)
    slots = list(schedule.slots(at(2026, 9, 28), at(2026, 10, 12, 23)))
    assert [s.astimezone(BEIJING).day for s in slots] == [28, 29, 30, 8, 9, 12]
    assert all(s.tzinfo == dt.UTC and s.astimezone(BEIJING).hour == 15 for s in slots)
    assert slots == [CALENDAR.fixing_at(s.astimezone(BEIJING).date()) for s in slots]


def test_intraday_slots_cover_the_sessions_of_publication_days():
    settings = Settings(trading_hours="09:00-11:30,13:30-15:00", intraday_interval_seconds=60)
    trigger = intraday_slots(settings, calendar_for(settings))
    day = list(trigger.slots(at(2026, 11, 26), at(2026, 11, 26, 23, 59)))
    assert len(day) == 150 + 90
    assert day[0] == at(2026, 11, 26, 9)
    assert day[149] == at(2026, 11, 26, 11, 29)
    assert day[150] == at(2026, 11, 26, 13, 30)
    assert day[-1] == at(2026, 11, 26, 14, 59)
    assert trigger.last_at_or_before(at(2026, 11, 26, 12, 0)) == at(2026, 11, 26, 11, 29)
    assert trigger.first_at_or_after(at(2026, 11, 26, 9, 0, 30)) == at(2026, 11, 26, 9, 1)
    assert trigger.first_at_or_after(at(2026, 10, 1, 9)) == at(2026, 10, 8, 9)  # holiday week
    fast_settings = Settings(trading_hours="00:00-24:00", intraday_interval_seconds=0.2)
    fast = intraday_slots(fast_settings, calendar_for(fast_settings))
    assert fast.first_at_or_after(at(2026, 11, 26, 10, 0, 0) + dt.timedelta(seconds=0.05)) == (
        at(2026, 11, 26, 10) + dt.timedelta(seconds=0.2)
    )
    assert fast.last_at_or_before(at(2026, 11, 27, 0) - dt.timedelta(microseconds=1)) == at(
        2026, 11, 26, 23, 59, 59
    ) + dt.timedelta(seconds=0.8)


def test_sweeps_follow_the_fixing_and_the_next_morning():
    trigger = scheduled("restatement_sweep", Settings(sweep_delay_minutes=10))
    slots = list(trigger.slots(at(2026, 11, 27), at(2026, 11, 30, 23)))
    assert [s.astimezone(BEIJING) for s in slots] == [
        at(2026, 11, 27, 8, 30),  # Friday morning, after Thursday
        at(2026, 11, 27, 15, 10),  # Friday, after the fixing
        at(2026, 11, 28, 8, 30),  # Saturday morning
        at(2026, 11, 30, 15, 10),  # Monday (no Monday-morning sweep: Sunday is no fixing)
    ]


def test_rebalance_announces_and_applies_on_the_first_publication_days_from_the_dates():
    settings = Settings()  # the methodology announces on 1 November, applies from 1 January
    announce = announce_slots(settings, CALENDAR)
    # 1 November 2026 is a Sunday: the announcement moves to Monday 2 November.
    assert announce.first_at_or_after(at(2026, 6, 1)) == at(2026, 11, 2, 8)
    assert announce.last_at_or_before(at(2026, 11, 26)) == at(2026, 11, 2, 8)
    apply = apply_slots(settings, CALENDAR)
    # 1-3 January 2026 are off; Sunday 4 January is a make-up working day, on which the
    # exchanges do not trade: the weights apply from Monday 5 January.
    assert apply.last_at_or_before(at(2026, 11, 26)) == at(2026, 1, 5, 8)
    assert apply.first_at_or_after(at(2026, 11, 26)) == at(2027, 1, 4, 8)


def test_the_scheduler_has_one_apscheduler_job_per_job_and_runs_none_until_it_leads(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bcpi.db'}")
    service = SchedulerService(engine, Settings(database_url=str(engine.url)), jobs=JOBS)
    ids = [job.id for job in service.get_jobs()]
    assert ids == [*(job.name for job in JOBS), "catch_up"]
    assert not service.is_leader
    engine.dispose()
