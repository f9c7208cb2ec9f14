"""Helpers for the scheduler and operations tests.

- :func:`write_trades` writes a feed with ample, sufficient trades on any list of days,
  whatever the calendar says (so a test can put trades on a holiday);
- :func:`witness_job` is a job whose every run appends a row to a table *without* a
  unique key: a slot run twice shows up as two rows;
- run as ``python -m tests.scheduler_support URL`` it is a scheduler process with the
  witness job beside the real ones (the replica tests start several of these).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import polars as pl
from sqlalchemy import Column, Engine, Integer, MetaData, Table, func, select
from sqlalchemy.orm import Session

from cli.synthetic import EXCHANGES, MARKETS
from core.settings import Settings
from publication.schedule import Event, intraday_slots
from scheduler.jobs import Job, JobContext
from store.models import UTCDateTime

BEIJING = dt.timezone(dt.timedelta(hours=8))

witness_metadata = MetaData()
witness = Table(
    "test_scheduler_witness",
    witness_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slot", UTCDateTime(), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)


def price_factor(day: dt.date) -> float:
    """How far each day's prices sit from the market's level: 1.00 to 1.06 by the day."""
    return 1 + 0.01 * (day.toordinal() % 7)


def write_trades(directory: Path, days: list[dt.date], *, per_exchange: int = 3) -> list[Path]:
    """One CSV per exchange: every commodity, ``per_exchange`` trades a day, 09:30-14:30.

    Every exchange trades the same volume at prices spread symmetrically (±0.1 %, and
    0 to 0.1 % by exchange) around ``level × price_factor(day)``, inside any 2-sigma band,
    so a commodity's VWAP on a day is ``level × price_factor(day) × 1.0005``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for e, exchange in enumerate(EXCHANGES):
        rows = []
        for day in days:
            for c, (code, market) in enumerate(MARKETS.items()):
                for k in range(per_exchange):
                    minute = 30 + 60 * k + 7 * e + c
                    at = dt.datetime.combine(day, dt.time(9 + minute // 60, minute % 60), BEIJING)
                    rows.append(
                        {
                            "trade_id": f"{exchange}-{day:%Y%m%d}-{code}-{k}",
                            "commodity": code,
                            "traded_at": at.isoformat(),
                            "price": market.level
                            * price_factor(day)
                            * (1 + 0.001 * (k - 1) + 0.0005 * e),
                            "quantity": market.lot * market.max_lots,
                            "currency": market.currency,
                            "unit": market.unit,
                            "fe_pct": 62.0 if code == "IRONORE" else None,
                            "moisture_pct": 8.0 if code == "IRONORE" else None,
                            "grade": "3128B" if code == "COTTON" else None,
                        }
                    )
        path = directory / f"{exchange}.csv"
        pl.DataFrame(rows, infer_schema_length=None).write_csv(path)
        paths.append(path)
    return paths


def ingest_days(engine: Engine, catalogue, directory: Path, days: list[dt.date]) -> None:
    from ingest.files import ingest_file
    from store.db import session_scope
    from store.reference import ensure_exchange

    with session_scope(engine) as session:
        for code, name in EXCHANGES.items():
            ensure_exchange(session, code, name)
    for path in write_trades(directory, days):
        with session_scope(engine) as session:
            result = ingest_file(session, catalogue, path, path.stem)
        assert result.rejected == 0, result.rejections[:3]


def witness_body(session: Session, ctx: JobContext) -> dict:
    session.execute(witness.insert().values(slot=ctx.slot, pid=os.getpid(), at=ctx.now))
    pause = float(os.environ.get("BCPI_TEST_WITNESS_PAUSE", "0"))
    stall_file = os.environ.get("BCPI_TEST_STALL_FILE")
    if stall_file and not Path(stall_file).exists():
        count = session.scalar(select(func.count()).select_from(witness))
        if count >= int(os.environ.get("BCPI_TEST_STALL_AFTER", "100")):
            Path(stall_file).write_text(f"{os.getpid()} {ctx.slot.isoformat()}\n")
            time.sleep(60)  # killed here, inside the transaction, by the test
    if pause:
        time.sleep(pause)
    return {"witnessed": ctx.slot.isoformat()}


def witness_job(horizon: dt.timedelta = dt.timedelta(minutes=5)) -> Job:
    """Runs on the intraday slots; appends one witness row per run."""
    return Job(Event("witness", intraday_slots, lambda s: horizon, retry=True), witness_body)


def witness_rows(engine: Engine) -> list[tuple[dt.datetime, int]]:
    with engine.connect() as connection:
        return [
            (slot, pid) for slot, pid in connection.execute(select(witness.c.slot, witness.c.pid))
        ]


def main() -> int:
    """A scheduler process: ``python -m tests.scheduler_support DATABASE_URL``."""
    from core.logging import configure_logging
    from scheduler.jobs import JOBS
    from scheduler.service import SchedulerService
    from store.db import make_engine

    settings = Settings(database_url=sys.argv[1])
    configure_logging("info", "json")
    engine = make_engine(settings.database_url)
    horizon = dt.timedelta(seconds=float(os.environ.get("BCPI_TEST_WITNESS_HORIZON", "10")))
    jobs = (*JOBS, witness_job(horizon))
    only = os.environ.get("BCPI_TEST_JOBS")
    if only:
        jobs = tuple(job for job in jobs if job.name in only.split(","))
    return SchedulerService(engine, settings, jobs=jobs).serve_forever()


if __name__ == "__main__":
    raise SystemExit(main())
