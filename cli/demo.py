"""The demo pipeline: synthetic feeds from three exchanges → store → indices."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from cli.progress import Job
from cli.synthetic import EXCHANGES, generate, trading_days, weekdays_between
from core.calendar import Calendar
from core.catalogue import Catalogue
from ingest.files import ingest_file
from ingest.results import IngestResult
from publication.fixing import ComputeReport, compute
from store.bootstrap import prepare_database
from store.db import session_scope
from store.reference import ensure_exchange


@dataclass
class DemoRun:
    files: list[Path]
    ingested: dict[str, IngestResult] = field(default_factory=dict)
    compute: ComputeReport | None = None

    def rejections_by_reason(self) -> Counter[str]:
        return sum((Counter(result.by_reason) for result in self.ingested.values()), Counter())


def demo_days(start: dt.date, today: dt.date) -> int:
    """Trading days from ``start`` up to yesterday, at least one."""
    return max(1, weekdays_between(start, today - dt.timedelta(days=1)))


def run_pipeline(
    engine: Engine,
    catalogue: Catalogue,
    feed_dir: Path,
    *,
    days: int,
    calendar: Calendar,
    start: dt.date | None = None,
    seed: int = 20250102,
    job: Job | None = None,
) -> DemoRun:
    """``job``: where to report each step (generate, each file's ingest, compute)."""
    start = start or calendar.methodology.family.base_date
    phase = job.phase if job is not None else lambda _step: None
    prepare_database(engine, catalogue, calendar.methodology)
    with session_scope(engine) as session:
        for code, name in EXCHANGES.items():
            ensure_exchange(session, code, name)
    phase(f"generating {days} trading days of feeds")
    run = DemoRun(files=generate(feed_dir, start=start, days=days, seed=seed))
    for path in run.files:
        phase(f"ingesting {path.name}")
        with session_scope(engine) as session:
            run.ingested[path.name] = ingest_file(session, catalogue, path, path.stem)
    last = trading_days(start, days)[-1]
    phase(f"computing {start}..{last}")
    with session_scope(engine) as session:
        run.compute = compute(session, start, last, calendar=calendar)
    return run
