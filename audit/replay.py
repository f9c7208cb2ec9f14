"""Replay: recompute published values from the archived batches, the journal and the code.

A scratch SQLite database receives the reference data as recorded (exchanges,
commodities, index definitions, weights; FX rates in the order they were loaded). Then the
journal of computations (:mod:`audit.journal`) is run again in order. Before each
computation, every archived batch its transaction could see is re-ingested through the
ingest code (:func:`ingest.batch.ingest_batch`) at its recorded arrival instant, and
each FX load is repeated (releasing held trades) at its instant. Each computation runs
with its recorded methodology version, trading calendar and ``now``, so it publishes its
vintages with the same ``published_at``. Every published value in scope is then compared
with its replayed twin, field by field (floats bit for bit).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audit.differences import Difference, ReplayReport, same, shown
from audit.scratch import Scratch
from core.catalogue import Catalogue
from core.progress import SILENT, Steps
from core.settings import Settings
from store import models
from store.models import AuditComputation

ASSESSMENT_FIELDS = (
    "price",
    "trades",
    "volume",
    "high",
    "low",
    "exchanges",
    "fallback",
    "status",
    "vintage",
    "methodology_version",
    "inputs_hash",
)
INDEX_FIELDS = ("value", "status", "vintage", "methodology_version", "inputs_hash")


# -- what was published ------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    what: str  # assessment | index
    key: int  # commodity id or index id
    code: str
    date: dt.date
    published_at: dt.datetime
    fields: dict[str, Any]


def published_values(
    session: Session, dates: set[dt.date] | None, index_code: str | None
) -> list[Published]:
    """Every vintage (current or superseded) of the dates, optionally of one index."""
    out = []
    A, V = models.Assessment, models.IndexValue
    assessments = select(A, models.Commodity.code).join(
        models.Commodity, models.Commodity.id == A.commodity_id
    )
    values = select(V, models.IndexDefinition.code).join(
        models.IndexDefinition, models.IndexDefinition.id == V.index_id
    )
    if dates is not None:
        assessments = assessments.where(A.date.in_(sorted(dates)))
        values = values.where(V.date.in_(sorted(dates)))
    if index_code is not None:
        assessments = assessments.where(models.Commodity.code == index_code)
        values = values.where(models.IndexDefinition.code == index_code)
    for row, code in session.execute(assessments):
        fields = {name: getattr(row, name) for name in ASSESSMENT_FIELDS}
        out.append(
            Published("assessment", row.commodity_id, code, row.date, row.published_at, fields)
        )
    for row, code in session.execute(values):
        fields = {name: getattr(row, name) for name in INDEX_FIELDS}
        out.append(Published("index", row.index_id, code, row.date, row.published_at, fields))
    return out


def published_dates(session: Session) -> list[dt.date]:
    A, V = models.Assessment, models.IndexValue
    days = set(session.scalars(select(A.date).distinct())) | set(
        session.scalars(select(V.date).distinct())
    )
    return sorted(days)


def _journal(session: Session) -> list[AuditComputation]:
    """In the order the computations committed (SQLite writes are serial; on PostgreSQL the
    fixing, sweeps and intraday runs are serialised by the scheduler's fence)."""
    return list(session.scalars(select(AuditComputation).order_by(AuditComputation.id)))


def _needed(
    journal: list[AuditComputation], scope: list[Published], dates: set[dt.date] | None
) -> list[AuditComputation]:
    """Every computation up to the last one that published a value in scope (intraday runs
    only of the dates in scope: provisional values are no input to any other value)."""
    instants = {p.published_at for p in scope}
    publishing = [n for n, entry in enumerate(journal) if entry.computed_at in instants]
    if not publishing:
        return []
    return [
        entry
        for entry in journal[: publishing[-1] + 1]
        if entry.kind != "provisional" or dates is None or entry.start in dates
    ]


def _compare(scratch: Session, scope: list[Published], report: ReplayReport) -> None:
    replayed = {
        (p.what, p.key, p.date, p.published_at): p
        for p in published_values(scratch, {p.date for p in scope}, None)
    }
    for p in sorted(scope, key=lambda p: (p.date, p.what, p.code, p.published_at)):
        report.values += 1
        twin = replayed.get((p.what, p.key, p.date, p.published_at))
        if twin is None:
            report.differences.append(
                Difference(p.what, p.code, p.date, p.published_at, "value", "published", "absent")
            )
            continue
        differs = [name for name in p.fields if not same(p.fields[name], twin.fields[name])]
        for name in differs:
            report.differences.append(
                Difference(
                    p.what,
                    p.code,
                    p.date,
                    p.published_at,
                    name,
                    shown(p.fields[name]),
                    shown(twin.fields[name]),
                )
            )
        if not differs:
            report.identical += 1


def replay(
    source: Engine,
    *,
    archive_dir: Path,
    catalogue: Catalogue,
    settings: Settings,
    dates: Iterable[dt.date] | None = None,
    index_code: str | None = None,
    workdir: Path | None = None,
    steps: Steps = SILENT,
) -> ReplayReport:
    """Replay what was published on ``dates`` (every published date when None);
    ``steps`` counts the computations replayed."""
    wanted = set(dates) if dates is not None else None
    report = ReplayReport()
    with Session(source) as session, workspace(workdir) as directory:
        scope = published_values(session, wanted, index_code)
        report.dates = sorted({p.date for p in scope}) if wanted is None else sorted(wanted)
        journal = _journal(session)
        times = {entry.computed_at for entry in journal}
        for at in sorted({p.published_at for p in scope} - times):
            report.differences.append(
                Difference("journal", "computation", None, at, "entry", "none recorded", "-")
            )
        scratch = Scratch(
            session,
            directory,
            catalogue=catalogue,
            settings=settings,
            archive_dir=archive_dir,
            report=report,
        )
        try:
            needed = list(_needed(journal, scope, wanted))
            steps.expect(len(needed), "computations")
            for entry in needed:
                scratch.run(entry)
                steps.advance()
            steps.phase("comparing with the published values")
            with Session(scratch.engine) as replayed:
                _compare(replayed, scope, report)
        finally:
            scratch.dispose()
    return report


@contextmanager
def workspace(workdir: Path | None) -> Iterator[Path]:
    """``workdir`` as given, or a temporary directory removed afterwards."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="bcpi-replay-") as name:
        yield Path(name)


__all__ = ["Difference", "ReplayReport", "replay"]
