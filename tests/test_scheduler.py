"""The daily fixing job and its trigger."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bcpi.settings import Settings
from ingest.service import ingest_file
from ingest.synthetic import EXCHANGES, generate
from scheduler.jobs import daily_fixing, fixing_trigger
from scheduler.runner import build_scheduler
from store.db import session_scope
from store.reference import ensure_exchange

BEIJING = ZoneInfo("Asia/Shanghai")


def test_trigger_fires_on_weekdays_at_the_fixing_time_beijing():
    trigger = fixing_trigger(Settings(fixing_time=dt.time(15, 0)))
    friday_evening = dt.datetime(2025, 3, 7, 16, 0, tzinfo=BEIJING)
    fire = trigger.get_next_fire_time(None, friday_evening)
    assert fire == dt.datetime(2025, 3, 10, 15, 0, tzinfo=BEIJING)  # Monday 15:00
    assert fire.astimezone(dt.UTC).hour == 7


def test_fixing_publishes_the_days_values_once(engine, catalogue, tmp_path):
    base = catalogue.index_family.base_date
    with session_scope(engine) as session:
        for code in EXCHANGES:
            ensure_exchange(session, code)
    for path in generate(tmp_path, start=base, days=2, malformed_per_file=0):
        with session_scope(engine) as session:
            ingest_file(session, catalogue, path, path.stem)

    at_fixing = dt.datetime.combine(base, dt.time(15, 0), BEIJING)
    report = daily_fixing(engine, Settings(), now=at_fixing)
    assert report.start == report.end == base
    assert report.trades > 0
    assert report.assessments.new == len(catalogue.commodities)
    assert report.index_values.new == len(catalogue.index_definitions())

    again = daily_fixing(engine, Settings(), now=at_fixing + dt.timedelta(minutes=5))
    assert again.assessments.unchanged == len(catalogue.commodities)
    assert again.index_values.new == again.index_values.restated == 0


def test_scheduler_has_the_fixing_job(engine):
    runner = build_scheduler(engine, Settings())
    assert [job.id for job in runner.get_jobs()] == ["daily_fixing"]
