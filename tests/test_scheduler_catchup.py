"""The scheduler under a simulated clock: a month with Chinese holidays inside, and a
restart after three missed publication days."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from core.methodology import in_force
from core.settings import Settings
from publication.fixing import compute
from scheduler.jobs import JOBS
from scheduler.runner import Runner
from scheduler.service import SchedulerService
from store import models
from store.db import session_scope
from store.models import JobRun
from tests.scheduler_support import ingest_days

BEIJING = ZoneInfo("Asia/Shanghai")
FIXING = next(job for job in JOBS if job.name == "fixing")
D = dt.date


def _span(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


# From the State Council's 2026 notice: Mid-Autumn Festival (25-27 Sep), National Day
# (1-7 Oct) with make-up working days on Sunday 20 September and Saturday 10 October.
# Methodology 2025.2 publishes on mainland exchange days: weekdays that are not holidays;
# the exchanges stay shut on make-up working days, so those are not publication days.
MONTH = _span(D(2026, 9, 14), D(2026, 10, 16))
HOLIDAYS = {D(2026, 9, 25), *_span(D(2026, 10, 1), D(2026, 10, 7))}
MAKE_UP_DAYS = {D(2026, 9, 20), D(2026, 10, 10)}
PUBLICATION_DAYS = [d for d in MONTH if d.weekday() < 5 and d not in HOLIDAYS]


@pytest.fixture
def month_of_trades(engine, catalogue, tmp_path):
    """Trades on the base date and on every weekday and make-up day of the month,
    the holiday weekdays included (a feed may well report trades on a holiday)."""
    base = in_force().family.base_date
    days = [base, *(d for d in MONTH if d.weekday() < 5 or d in MAKE_UP_DAYS)]
    ingest_days(engine, catalogue, tmp_path / "feeds", days)
    with session_scope(engine) as session:
        compute(session, base, base, now=dt.datetime.combine(base, dt.time(16), BEIJING))
    return engine


def _final_values(engine) -> dict[dt.date, list[tuple[str, int]]]:
    """Date → [(status, vintage)] of every index value published for it."""
    out: dict[dt.date, list[tuple[str, int]]] = {}
    with session_scope(engine) as session:
        for day, status, vintage in session.execute(
            select(models.IndexValue.date, models.IndexValue.status, models.IndexValue.vintage)
        ):
            out.setdefault(day, []).append((status, vintage))
    return out


def test_a_month_with_holidays_has_one_final_fixing_per_publication_day_and_none_on_holidays(
    month_of_trades, catalogue
):
    engine = month_of_trades
    clock = [dt.datetime.combine(MONTH[0], dt.time(0), BEIJING)]
    settings = Settings(catchup_horizon_days=1)  # running all along: nothing before to catch up
    runner = Runner(engine, settings, holder="simulated", jobs=(FIXING,), clock=lambda: clock[0])
    end = dt.datetime.combine(MONTH[-1] + dt.timedelta(days=1), dt.time(0), BEIJING)
    ran = []
    while clock[0] < end:  # every quarter of an hour, holidays and nights included
        ran += [r for r in runner.run_due(now=clock[0]) if r.outcome == "succeeded"]
        clock[0] += dt.timedelta(minutes=15)

    fixed_days = [r.slot.astimezone(BEIJING).date() for r in ran]
    assert fixed_days == PUBLICATION_DAYS
    assert all(r.slot.astimezone(BEIJING).time() == dt.time(15) for r in ran)
    with session_scope(engine) as session:
        runs = session.execute(select(JobRun.slot, JobRun.outcome, JobRun.attempts)).all()
    assert sorted(s.astimezone(BEIJING).date() for s, _, _ in runs) == PUBLICATION_DAYS
    assert {(outcome, attempts) for _, outcome, attempts in runs} == {("succeeded", 1)}

    values = _final_values(engine)
    n_indices = len(catalogue.index_definitions(in_force()))
    for day in PUBLICATION_DAYS:
        assert sorted(values.get(day, [])) == [("final", 1)] * n_indices, day
    published_month_days = {d for d in values if d >= MONTH[0]}
    assert published_month_days == set(PUBLICATION_DAYS)
    assert not published_month_days & HOLIDAYS
    assert not published_month_days & MAKE_UP_DAYS


def test_a_scheduler_stopped_for_three_publication_days_catches_up_their_fixings_in_order(
    month_of_trades,
):
    engine = month_of_trades
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    clock = [dt.datetime.combine(D(2026, 10, 12), dt.time(15, 30), BEIJING)]
    first = Runner(engine, settings, holder="before", jobs=(FIXING,), clock=lambda: clock[0])
    assert [r.slot.astimezone(BEIJING).date() for r in first.run_due()] == [
        d
        for d in PUBLICATION_DAYS
        if D(2026, 10, 5) <= d <= D(2026, 10, 12)  # the horizon
    ]
    # Stopped on Monday evening; back on Friday morning: Tue, Wed and Thu were missed.
    clock[0] = dt.datetime.combine(D(2026, 10, 16), dt.time(9, 30), BEIJING)
    service = SchedulerService(
        engine, settings, jobs=(FIXING,), holder="after", clock=lambda: clock[0]
    )
    service.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                caught = session.scalar(
                    select(func.count()).where(
                        JobRun.holder == "after", JobRun.outcome == "succeeded"
                    )
                )
            if caught >= 3:
                break
            time.sleep(0.2)
        assert service.is_leader
    finally:
        service.shutdown()

    with session_scope(engine) as session:
        runs = session.execute(
            select(JobRun.slot, JobRun.started_at, JobRun.attempts)
            .where(JobRun.holder == "after")
            .order_by(JobRun.id)
        ).all()
        published = dict(
            session.execute(
                select(models.IndexValue.date, func.min(models.IndexValue.published_at))
                .where(models.IndexValue.date >= D(2026, 10, 13))
                .group_by(models.IndexValue.date)
            ).all()
        )
    missed = [D(2026, 10, 13), D(2026, 10, 14), D(2026, 10, 15)]
    assert [slot.astimezone(BEIJING).date() for slot, _, _ in runs] == missed
    assert [attempts for _, _, attempts in runs] == [1, 1, 1]
    assert sorted(published) == missed
    assert [published[d] for d in missed] == sorted(published.values())
