"""Each job body calls its service: intraday provisional values, the sweep, the rebalance."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from core.methodology import in_force
from core.settings import Settings
from publication.fixing import compute
from scheduler.jobs import JOBS
from scheduler.runner import Runner
from store.db import session_scope
from store.models import IndexDailyOHLC, IntradayIndexValue, JobRun
from tests.scheduler_support import BEIJING, ingest_days

BASE = dt.date(2025, 1, 2)
DAY = dt.date(2025, 1, 3)


def _jobs(*names: str):
    return tuple(job for job in JOBS if job.name in names)


def test_intraday_slots_publish_one_observation_each_then_the_fixing_closes_the_day(
    engine, catalogue, tmp_path
):
    ingest_days(engine, catalogue, tmp_path / "feeds", [BASE, DAY])
    with session_scope(engine) as session:
        compute(session, BASE, BASE, now=dt.datetime.combine(BASE, dt.time(16), BEIJING))
    settings = Settings(
        trading_hours="14:50-15:00",
        intraday_interval_seconds=120,
        intraday_catchup_seconds=600,
        catchup_horizon_days=0.01,
    )
    clock = [dt.datetime.combine(DAY, dt.time(14, 59), BEIJING)]
    runner = Runner(
        engine, settings, holder="t", jobs=_jobs("intraday", "fixing"), clock=lambda: clock[0]
    )
    runs = runner.run_due()
    assert [(r.job, r.outcome) for r in runs] == [("intraday", "succeeded")] * 5
    assert runner.run_due() == []  # nothing twice
    n_indices = len(catalogue.index_definitions(in_force()))
    with session_scope(engine) as session:
        observed = session.execute(
            select(IntradayIndexValue.observed_at, func.count()).group_by(
                IntradayIndexValue.observed_at
            )
        ).all()
        ohlc = session.scalars(
            select(IndexDailyOHLC.observations).where(IndexDailyOHLC.date == DAY)
        ).all()
    assert sorted(at for at, _ in observed) == [r.slot for r in runs]
    assert {count for _, count in observed} == {n_indices}
    assert ohlc == [5] * n_indices  # each slot observed once

    clock[0] = dt.datetime.combine(DAY, dt.time(15, 1), BEIJING)
    assert [(r.job, r.outcome) for r in runner.run_due()] == [("fixing", "succeeded")]
    with session_scope(engine) as session:
        statuses = set(
            session.scalars(select(IndexDailyOHLC.status).where(IndexDailyOHLC.date == DAY))
        )
    assert statuses == {"final"}


def test_the_sweep_and_the_rebalance_jobs_run_their_services(engine, catalogue, tmp_path):
    ingest_days(engine, catalogue, tmp_path / "feeds", [BASE, DAY])
    with session_scope(engine) as session:
        compute(session, BASE, DAY, now=dt.datetime.combine(DAY, dt.time(16), BEIJING))
    settings = Settings(catchup_horizon_days=3)
    # 2025-11-03: the first publication day from 1 November (a Saturday): the announcement.
    clock = [dt.datetime(2025, 11, 3, 8, 30, tzinfo=BEIJING)]
    runner = Runner(
        engine,
        settings,
        holder="t",
        jobs=_jobs("restatement_sweep", "rebalance_announce", "rebalance_apply"),
        clock=lambda: clock[0],
    )
    runs = runner.run_due()
    assert [(r.job, r.slot.astimezone(BEIJING)) for r in runs] == [
        ("restatement_sweep", dt.datetime(2025, 10, 31, 8, 30, tzinfo=BEIJING)),
        ("restatement_sweep", dt.datetime(2025, 10, 31, 15, 10, tzinfo=BEIJING)),
        ("restatement_sweep", dt.datetime(2025, 11, 1, 8, 30, tzinfo=BEIJING)),
        ("rebalance_announce", dt.datetime(2025, 11, 3, 8, 0, tzinfo=BEIJING)),
    ]
    assert all(r.outcome == "succeeded" for r in runs), [r.error for r in runs]
    announced = runs[-1].detail
    assert announced["status"] == "announced" and announced["effective_from"] == "2026-01-01"
    assert abs(sum(announced["weights"].values()) - 1) < 1e-9

    # 1-3 January 2026 are holidays; Sunday 4 January is a make-up working day, but the
    # mainland exchanges are shut: the weights apply from Monday 5 January.
    clock[0] = dt.datetime(2026, 1, 4, 9, 0, tzinfo=BEIJING)
    assert runner.run_due(["rebalance_apply"]) == []
    clock[0] = dt.datetime(2026, 1, 5, 9, 0, tzinfo=BEIJING)
    applied = runner.run_due(["rebalance_apply"])
    assert [(r.job, r.outcome) for r in applied] == [("rebalance_apply", "succeeded")]
    assert applied[0].slot.astimezone(BEIJING).date() == dt.date(2026, 1, 5)
    with session_scope(engine) as session:
        jobs = dict(session.execute(select(JobRun.job, func.count()).group_by(JobRun.job)).all())
    assert jobs == {"restatement_sweep": 3, "rebalance_announce": 1, "rebalance_apply": 1}
