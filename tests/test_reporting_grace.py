"""Reporting grace (methodology 2026.1, from 1 December 2026): the fixing of D is computed
five minutes after D's 15:00 cut-off, so a trade executed in D's window and received within
those five minutes is in D's first published fixing; one received later is a late trade,
restated at the next sweep with a correction notice. Days under 2025.2 keep the fixing at
the cut-off (METHODOLOGY.md; the changelog of v2026.1.toml).

The feeds are tests/scheduler_support.py's: on each day every commodity has nine trades of
one size (three per exchange), whose volume-weighted price is ``level × f × 1.0005``
(``f``: that day's price factor). A tenth REBAR trade of the same size at
``level × f × 1.0105`` moves REBAR's price to ``level × f × (9 × 1.0005 + 1.0105) / 10
= level × f × 1.0015``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select

from cli.synthetic import EXCHANGES, MARKETS
from core.calendar import Calendar
from core.errors import FixingTooEarly
from core.methodology import in_force, load_methodology
from core.settings import Settings
from ingest.batch import ingest_frame
from scheduler.jobs import JOBS, JobContext, fixing
from scheduler.runner import Runner
from scheduler.triggers import SlotTrigger
from store import models
from store.db import session_scope
from store.reference import ensure_exchange
from tests.scheduler_support import BEIJING, price_factor, write_trades

BEFORE, D = dt.date(2026, 12, 2), dt.date(2026, 12, 3)  # Wednesday and Thursday
LEVEL = MARKETS["REBAR"].level
SIZE = MARKETS["REBAR"].lot * MARKETS["REBAR"].max_lots


def at(day: dt.date, *hms: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(*hms), BEIJING)


def _schedule(name: str, calendar: Calendar):
    """The slots the scheduler runs job ``name`` at (sweeps 10 minutes after the fixing)."""
    job = next(job for job in JOBS if job.name == name)
    return job.event.slots(Settings(sweep_delay_minutes=10), calendar)


def test_the_fixing_instant_follows_the_version_in_force_on_each_day():
    calendar = Calendar(in_force(dt.date(2026, 12, 4)))
    assert calendar.methodology.version == "2026.1"
    assert calendar.fixing_time == dt.time(15, 5)
    assert calendar.fixing_at(dt.date(2026, 11, 30)) == at(dt.date(2026, 11, 30), 15)  # 2025.2
    assert calendar.fixing_at(dt.date(2026, 12, 1)) == at(dt.date(2026, 12, 1), 15, 5)
    # A process started under 2025.2 fixes at 15:05 from the day 2026.1 is in force.
    before = Calendar(load_methodology("2025.2"))
    assert before.fixing_time == dt.time(15, 0)
    assert before.fixing_at(dt.date(2026, 12, 1)) == at(dt.date(2026, 12, 1), 15, 5)
    # The window still closes at the cut-off: a trade at 15:00:01 is the next day's.
    assert calendar.window(D) == (at(BEFORE, 15), at(D, 15))
    assert calendar.window_day(at(D, 15, 0, 1)) == dt.date(2026, 12, 4)


def test_the_scheduler_fires_the_fixing_and_the_sweep_after_each_days_fixing_instant():
    start, end = at(dt.date(2026, 11, 27), 0), at(dt.date(2026, 12, 2), 23)
    for calendar in (Calendar(load_methodology("2025.2")), Calendar(load_methodology("2026.1"))):
        schedule = _schedule("fixing", calendar)
        assert [s.astimezone(BEIJING) for s in schedule.slots(start, end)] == [
            at(dt.date(2026, 11, 27), 15),  # Friday
            at(dt.date(2026, 11, 30), 15),  # Monday, the last day of 2025.2
            at(dt.date(2026, 12, 1), 15, 5),
            at(dt.date(2026, 12, 2), 15, 5),
        ]
        trigger = SlotTrigger(schedule)
        assert trigger.get_next_fire_time(None, at(D, 15, 0, 1)) == at(D, 15, 5)
        assert schedule.last_at_or_before(at(D, 15, 4, 59)) == at(BEFORE, 15, 5)
        sweeps = _schedule("restatement_sweep", calendar).slots(start, end)
        assert [s.astimezone(BEIJING) for s in sweeps if s.astimezone(BEIJING).hour == 15] == [
            at(dt.date(2026, 11, 27), 15, 10),
            at(dt.date(2026, 11, 30), 15, 10),
            at(dt.date(2026, 12, 1), 15, 15),
            at(dt.date(2026, 12, 2), 15, 15),
        ]


def test_a_fixing_run_before_the_grace_has_passed_fails_so_that_it_is_retried(engine):
    calendar = Calendar(load_methodology("2026.1"))
    early = JobContext(at(D, 15, 5).astimezone(dt.UTC), at(D, 15, 3), Settings(), calendar)
    with session_scope(engine) as session, pytest.raises(FixingTooEarly, match="15:05"):
        fixing(session, early)


def _feeds(directory: Path) -> dict[str, pl.DataFrame]:
    """Each exchange's trades of both days, every trade with its own buyer and seller."""
    frames = {}
    for path in write_trades(directory, [BEFORE, D]):
        frame = pl.read_csv(path, infer_schema=False)
        frames[path.stem] = frame.with_row_index("n").select(
            pl.exclude("n"),
            (pl.lit(f"{path.stem}-B") + pl.col("n").cast(pl.String)).alias("buyer"),
            (pl.lit(f"{path.stem}-S") + pl.col("n").cast(pl.String)).alias("seller"),
            pl.lit("false").alias("affiliated"),
        )
    return frames


def _receive(engine, catalogue, exchange: str, rows: pl.DataFrame, received: dt.datetime):
    with session_scope(engine) as session:
        result = ingest_frame(
            session,
            catalogue,
            rows,
            exchange_code=exchange,
            source="http",
            fmt="csv",
            sha256="0" * 64,
            now=received,
        )
    assert result.rejected == 0, result.rejections[:3]
    return result


def _late_rebar(received: dt.datetime) -> pl.DataFrame:
    price = LEVEL * price_factor(D) * 1.0105
    return pl.DataFrame(
        [
            {
                "trade_id": f"BJCX-LATE-{received:%H%M%S}",
                "commodity": "REBAR",
                "traded_at": at(D, 14, 59, 58).isoformat(),
                "price": repr(price),
                "quantity": str(SIZE),
                "currency": "CNY",
                "unit": "t",
                "buyer": "BJCX-B-LATE",
                "seller": "BJCX-S-LATE",
                "affiliated": "false",
            }
        ]
    )


@pytest.fixture
def market(engine, catalogue, tmp_path):
    """Both days' trades received at 14:50 each day, and the fixing of 2 December done."""
    with session_scope(engine) as session:
        for code, name in EXCHANGES.items():
            ensure_exchange(session, code, name)
    for exchange, frame in _feeds(tmp_path / "feeds").items():
        for day in (BEFORE, D):
            rows = frame.filter(pl.col("traded_at").str.starts_with(day.isoformat()))
            _receive(engine, catalogue, exchange, rows, at(day, 14, 50))
    clock = [at(BEFORE, 15, 6)]
    runner = Runner(
        engine,
        Settings(catchup_horizon_days=0.2),
        holder="test",
        jobs=tuple(job for job in JOBS if job.name in ("fixing", "restatement_sweep")),
        clock=lambda: clock[0],
    )
    (before,) = runner.run_due(["fixing"])
    assert (before.slot, before.outcome) == (at(BEFORE, 15, 5), "succeeded")
    return runner, clock


def _rebar_on_d(engine) -> list[models.Assessment]:
    """Every vintage of REBAR's assessment of D, oldest first."""
    with session_scope(engine) as session:
        rows = session.scalars(
            select(models.Assessment)
            .join(models.Commodity)
            .where(models.Commodity.code == "REBAR", models.Assessment.date == D)
            .order_by(models.Assessment.vintage)
        ).all()
        session.expunge_all()
    return list(rows)


def _notices_on_d(engine) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        return sorted(
            session.execute(
                select(models.IndexDefinition.code, models.Correction.reason)
                .join(models.IndexDefinition)
                .where(models.Correction.date == D)
            ).all()
        )


def test_a_trade_received_within_the_grace_is_in_the_first_fixing(engine, catalogue, market):
    runner, clock = market
    clock[0] = at(D, 15)
    assert runner.run_due(["fixing"]) == []  # the cut-off: not due yet
    _receive(engine, catalogue, "BJCX", _late_rebar(at(D, 15, 0, 3)), at(D, 15, 0, 3))
    with session_scope(engine) as session:
        stored = session.scalar(select(models.Trade).where(models.Trade.trade_id.like("%LATE%")))
        assert stored.received_at == at(D, 15, 0, 3)
        assert session.scalars(select(models.RestatementMark)).all() == []

    clock[0] = at(D, 15, 4, 59)
    assert runner.run_due(["fixing"]) == []
    clock[0] = at(D, 15, 5)
    (run,) = runner.run_due(["fixing"])
    assert (run.slot, run.outcome) == (at(D, 15, 5), "succeeded")
    (first,) = _rebar_on_d(engine)
    assert first.trades == 10 and first.volume == pytest.approx(10 * SIZE)
    assert first.price == pytest.approx(LEVEL * price_factor(D) * 1.0015, rel=1e-12)

    clock[0] = at(D, 15, 20)
    (swept,) = runner.run_due(["restatement_sweep"])
    assert swept.outcome == "succeeded" and swept.detail["corrections"] == 0
    assert [a.vintage for a in _rebar_on_d(engine)] == [first.vintage]  # no restatement
    assert _notices_on_d(engine) == []


def test_a_trade_received_after_the_fixing_is_restated_with_a_notice(engine, catalogue, market):
    runner, clock = market
    clock[0] = at(D, 15, 5, 30)
    (run,) = runner.run_due(["fixing"])
    assert (run.slot, run.outcome) == (at(D, 15, 5), "succeeded")
    (first,) = _rebar_on_d(engine)
    assert first.trades == 9
    assert first.price == pytest.approx(LEVEL * price_factor(D) * 1.0005, rel=1e-12)

    _receive(engine, catalogue, "BJCX", _late_rebar(at(D, 15, 6)), at(D, 15, 6))
    clock[0] = at(D, 15, 20)
    (swept,) = runner.run_due(["restatement_sweep"])
    assert swept.outcome == "succeeded"
    first_again, restated = _rebar_on_d(engine)
    assert first_again.superseded_at is not None and restated.superseded_at is None
    assert restated.trades == 10
    assert restated.price == pytest.approx(LEVEL * price_factor(D) * 1.0015, rel=1e-12)
    notices = _notices_on_d(engine)
    assert ("REBAR", "late_trade") in notices
    assert {reason for _, reason in notices} == {"late_trade"}
