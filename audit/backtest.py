"""Backtest: a methodology version run over the stored history, nothing published.

The inputs a computation reads are copied, in one read-only transaction, from the
production database into a scratch SQLite database: the reference data, the weights as
stored, the trades of the range's windows and the assessments published before the range
(the fallbacks' memory and the indices' history up to it). :func:`publication.fixing.compute`
runs there under the version alone, on every day of the range whatever its
``effective_from``. What it computed is then set beside what production published: per
index, the days whose values differ (not bit for bit equal, or on one side only), the
largest absolute and relative difference and the tracking error, the root mean square of
the daily log differences ``ln(backtest / published)``; per commodity and day, what changed
in the assessment's rationale (the excluded trades by rule, the fallback, the failed
sufficiency tests).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import JSON, Engine, Text, bindparam, cast, create_engine, event, func, select, text
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.errors import InvalidInput, InvalidRange, NotPublished
from core.methodology import Methodology, registry
from core.progress import SILENT, Steps
from publication.fixing import compute
from publication.vintage import Restating
from store import models
from store.models import FIXED

WHOLE_TABLES = (
    models.Exchange,
    models.Commodity,
    models.IndexDefinition,
    models.IndexConstituent,
    models.WeightSet,
    models.WeightSetMember,
    models.FxRate,
)
"""Reference data, copied whole: the computation reads the weights as stored."""
ASPECTS = ("exclusions", "fallback", "sufficiency")
CHUNK = 5000


@dataclass(frozen=True)
class ValueRow:
    date: dt.date
    index: str
    published: float | None
    backtest: float | None

    @property
    def difference(self) -> float | None:
        if self.published is None or self.backtest is None:
            return None
        return self.backtest - self.published


@dataclass(frozen=True)
class AssessmentChange:
    """One commodity's assessment on one day, where the rationale changed in ``aspects``."""

    date: dt.date
    commodity: str
    aspects: tuple[str, ...]
    published: dict[str, Any]
    backtest: dict[str, Any]


@dataclass(frozen=True)
class IndexSummary:
    index: str
    days_compared: int
    """Days with a value on both sides."""
    days_differing: int
    max_abs_difference: float | None
    max_rel_difference: float | None
    tracking_error: float | None
    exclusions_changed_days: int
    fallbacks_changed_days: int
    sufficiency_changed_days: int
    published_only_days: int
    backtest_only_days: int


@dataclass
class Backtest:
    version: str
    start: dt.date
    end: dt.date
    days: int
    """Publication days of the range whose window had closed: the days computed."""
    indices: list[IndexSummary] = field(default_factory=list)
    values: list[ValueRow] = field(default_factory=list)
    changes: list[AssessmentChange] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The figures as JSON (a consultation keeps them)."""
        return {
            "version": self.version,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "indices": [asdict(s) for s in self.indices],
        }


def published_range(session: Session) -> tuple[dt.date, dt.date] | None:
    """The first and last day with a fixed value standing (``None``: nothing published)."""
    bounds = [
        session.execute(
            select(func.min(m.date), func.max(m.date)).where(
                m.superseded_at.is_(None), m.status.in_(FIXED)
            )
        ).one()
        for m in (models.IndexValue, models.Assessment)
    ]
    found = [b for b in bounds if b[0] is not None]
    return (min(b[0] for b in found), max(b[1] for b in found)) if found else None


def check_range(start: dt.date, end: dt.date, today: dt.date) -> None:
    if start > end:
        raise InvalidRange(f"start {start} is after end {end}", start=start, end=end)
    if end > today:
        raise InvalidInput("end", f"{end} is after today ({today}): a backtest runs over history")


@contextmanager
def read_only(engine: Engine) -> Iterator[Session]:
    """One snapshot of ``engine``'s database that this session cannot write to."""
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        try:
            yield session
        finally:
            session.rollback()


def backtest(
    source: Engine,
    methodology: Methodology,
    calendar: Calendar,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    now: dt.datetime | None = None,
    steps: Steps = SILENT,
) -> Backtest:
    """Run ``methodology`` over ``start..end`` of the history in ``source`` (default: the
    whole published history) and compare with what was published. ``source`` is only read
    (give it a read engine: :func:`store.db.read_engine_for`); ``steps`` hears each phase."""
    _check_version(methodology)
    calendar = calendar.under(methodology)
    now = now or dt.datetime.now(dt.UTC)
    with read_only(source) as session:
        if start is None or end is None:
            history = published_range(session)
            if history is None:
                raise NotPublished("nothing has been published: give the range to backtest")
            start, end = start or history[0], end or history[1]
        check_range(start, end, calendar.today(now))
        steps.phase(f"copying the inputs of {start}..{end} into a scratch database")
        copies = _inputs(session, calendar, start, end)
        published = _index_values(session, start, end)
        published_rationale = _assessments(session, start, end)
        members = _members(session)
    with tempfile.TemporaryDirectory(prefix="bcpi-backtest-") as directory:
        engine = _scratch(Path(directory) / "backtest.db", copies)
        try:
            with Session(engine) as scratch, scratch.begin():
                report = compute(
                    scratch,
                    start,
                    end,
                    now=now,
                    calendar=calendar,
                    rules=Restating(methodology.version),
                    steps=steps,
                )
            steps.phase("comparing with the published values")
            with Session(engine) as scratch:
                computed = _index_values(scratch, start, end)
                computed_rationale = _assessments(scratch, start, end)
        finally:
            engine.dispose()
    pending = set(report.pending_days)
    days = [d for d in calendar.publication_days(start, end) if d not in pending]
    result = Backtest(methodology.version, start, end, len(days))
    result.changes = _changes(published_rationale, computed_rationale)
    result.values, result.indices = _compare(published, computed, members, result.changes)
    return result


# -- the scratch database ------------------------------------------------------------------


def _check_version(methodology: Methodology) -> None:
    """A proposed change is a new version: a known version with another document is not."""
    known = registry.registered().get(methodology.version)
    if known is not None and known.methodology != methodology:
        raise InvalidInput(
            "methodology",
            f"version {methodology.version} is already {known.source} with another "
            "document: give the proposed change a new version",
        )


def _rows(session: Session, model, *where) -> list[dict[str, Any]]:
    """The rows as stored, JSON columns as their text (copied, never parsed)."""
    columns = [
        cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c
        for c in model.__table__.columns
    ]
    return [dict(r) for r in session.execute(select(*columns).where(*where)).mappings()]


def _insert(model):
    """An insert of rows read by :func:`_rows`."""
    table = model.__table__
    return table.insert().values(
        {
            c.name: bindparam(c.name, type_=Text() if isinstance(c.type, JSON) else c.type)
            for c in table.columns
        }
    )


def _inputs(session: Session, calendar: Calendar, start: dt.date, end: dt.date) -> dict:
    """Every row the computation of ``start..end`` reads, by model."""
    first_window = calendar.at(calendar.previous_publication_day(start)) - dt.timedelta(days=1)
    last_window = calendar.at(end) + dt.timedelta(days=2)
    A, T, B = models.Assessment, models.Trade, models.BandRejection
    copies = {model: _rows(session, model) for model in WHOLE_TABLES}
    copies[T] = _rows(session, T, T.traded_at > first_window, T.traded_at <= last_window)
    copies[B] = _rows(session, B, B.window_day >= start, B.window_day <= end)
    copies[A] = _rows(session, A, A.superseded_at.is_(None), A.status.in_(FIXED), A.date < start)
    return copies


def _scratch(path: Path, copies: dict) -> Engine:
    """A throwaway SQLite database holding ``copies`` (no journal, no fsync)."""
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=OFF")
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    models.Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for model, rows in copies.items():
            for n in range(0, len(rows), CHUNK):
                connection.execute(_insert(model), rows[n : n + CHUNK])
    return engine


# -- what each side holds ------------------------------------------------------------------


def _index_values(session: Session, start: dt.date, end: dt.date) -> dict[tuple, float]:
    """Fixed index values standing, by (index code, date)."""
    V, D = models.IndexValue, models.IndexDefinition
    rows = session.execute(
        select(D.code, V.date, V.value)
        .join(D, D.id == V.index_id)
        .where(V.superseded_at.is_(None), V.status.in_(FIXED), V.date >= start, V.date <= end)
    )
    return {(code, day): value for code, day, value in rows}


def _assessments(session: Session, start: dt.date, end: dt.date) -> dict[tuple, dict]:
    """What each fixed assessment's rationale says, by (commodity code, date)."""
    A, C = models.Assessment, models.Commodity
    rows = session.execute(
        select(C.code, A.date, A.fallback, A.rationale)
        .join(C, C.id == A.commodity_id)
        .where(A.superseded_at.is_(None), A.status.in_(FIXED), A.date >= start, A.date <= end)
    )
    return {(code, day): _aspects(fallback, rationale) for code, day, fallback, rationale in rows}


def _aspects(fallback: str, rationale: dict | None) -> dict[str, Any]:
    rationale = rationale or {}
    rules = Counter(item.get("rule", "?") for item in rationale.get("excluded", []))
    return {
        "exclusions": {"count": rationale.get("excluded_count", 0), **dict(sorted(rules.items()))},
        "fallback": fallback,
        "sufficiency": sorted(rationale.get("sufficiency", {}).get("failed", [])),
    }


def _members(session: Session) -> dict[str, set[str]]:
    """Each index's constituents over every weight set."""
    K, C, D = models.IndexConstituent, models.Commodity, models.IndexDefinition
    out: dict[str, set[str]] = defaultdict(set)
    for index, commodity in session.execute(
        select(D.code, C.code)
        .join(K, K.index_id == D.id)
        .join(C, C.id == K.commodity_id)
        .where(K.weight > 0)
    ):
        out[index].add(commodity)
    return out


# -- the comparison ------------------------------------------------------------------------


def _changes(published: dict, computed: dict) -> list[AssessmentChange]:
    out = []
    for key in sorted(published.keys() & computed.keys(), key=lambda k: (k[1], k[0])):
        before, after = published[key], computed[key]
        aspects = tuple(a for a in ASPECTS if before[a] != after[a])
        if aspects:
            out.append(AssessmentChange(key[1], key[0], aspects, before, after))
    return out


def _compare(
    published: dict, computed: dict, members: dict[str, set[str]], changes
) -> tuple[list[ValueRow], list[IndexSummary]]:
    changed: dict[str, dict[str, set[dt.date]]] = {a: defaultdict(set) for a in ASPECTS}
    for change in changes:
        for aspect in change.aspects:
            changed[aspect][change.commodity].add(change.date)
    values = [
        ValueRow(day, code, published.get((code, day)), computed.get((code, day)))
        for code, day in sorted(published.keys() | computed.keys())
    ]
    by_index: dict[str, list[ValueRow]] = defaultdict(list)
    for row in values:
        by_index[row.index].append(row)
    summaries = []
    for code, rows in sorted(by_index.items()):
        both = [r for r in rows if r.difference is not None]
        absolute = [abs(r.difference) for r in both]
        relative = [abs(r.difference) / abs(r.published) for r in both if r.published]
        logs = [
            math.log(r.backtest / r.published) for r in both if r.published > 0 and r.backtest > 0
        ]

        def days_of(aspect: str, code: str = code) -> int:
            return len(set().union(*(changed[aspect][c] for c in members.get(code, ()))))

        summaries.append(
            IndexSummary(
                index=code,
                days_compared=len(both),
                days_differing=sum(1 for r in rows if r.published != r.backtest),
                max_abs_difference=max(absolute, default=None),
                max_rel_difference=max(relative, default=None),
                tracking_error=math.sqrt(sum(x * x for x in logs) / len(logs)) if logs else None,
                exclusions_changed_days=days_of("exclusions"),
                fallbacks_changed_days=days_of("fallback"),
                sufficiency_changed_days=days_of("sufficiency"),
                published_only_days=sum(1 for r in rows if r.backtest is None),
                backtest_only_days=sum(1 for r in rows if r.published is None),
            )
        )
    return values, summaries


# -- files ---------------------------------------------------------------------------------


def write_files(result: Backtest, directory: Path) -> list[Path]:
    """``summary.csv`` (per index), ``values.parquet`` (date, index, published, backtest,
    difference) and ``changes.csv`` (per commodity and day, what the rationale changed)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / name for name in ("summary.csv", "values.parquet", "changes.csv")]
    types = {"str": pl.String, "int": pl.Int64, "float | None": pl.Float64}
    schema = {f.name: types[f.type] for f in fields(IndexSummary)}
    summary = [asdict(s) for s in result.indices]
    pl.DataFrame(summary, schema=schema, orient="row").write_csv(paths[0])
    values = [(r.date, r.index, r.published, r.backtest, r.difference) for r in result.values]
    schema = {"date": pl.Date, "index": pl.String} | dict.fromkeys(
        ("published", "backtest", "difference"), pl.Float64
    )
    pl.DataFrame(values, schema=schema, orient="row").write_parquet(paths[1])
    changes = []
    for change in result.changes:
        row = [change.date, change.commodity, " ".join(change.aspects)]
        for aspects in (change.published, change.backtest):
            row.append(aspects["fallback"])
            row.append(json.dumps(aspects["exclusions"], sort_keys=True))
            row.append(" ".join(aspects["sufficiency"]))
        changes.append(row)
    schema = {"date": pl.Date, "commodity": pl.String, "changed": pl.String} | {
        f"{what}_{side}": pl.String
        for side in ("published", "backtest")
        for what in ("fallback", "excluded", "failed")
    }
    pl.DataFrame(changes, schema=schema, orient="row").write_csv(paths[2])
    return paths
