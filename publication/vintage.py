"""Publish computed numbers as vintages: a changed input makes a new vintage, never an edit;
a value whose date is no longer a publication day gets a ``withdrawn`` vintage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.methodology import Segments, load_methodology, superseded_by, version_on
from publication.review import flag_moves
from store import models
from store.models import FIXED, PROVISIONAL, RESTATED, WITHDRAWN, PublicationState
from store.standing import take_in

VINTAGE_COLUMNS = (
    "id",
    "status",
    "vintage",
    "methodology_version",
    "published_at",
    "superseded_at",
)
VALUE_COLUMNS = {"assessments": ("price", "high", "low"), "index_values": ("value",)}
PUBLISHED_COLUMNS = {
    "assessments": ("price", "trades", "volume", "high", "low", "exchanges", "fallback"),
    "index_values": ("value",),
}


@dataclass
class PublishCounts:
    new: int = 0
    restated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    frozen: int = 0
    """Fixed values a recomputation would have changed, outside the correction window."""
    kept: set[tuple[int, dt.date]] = field(default_factory=set, repr=False, compare=False)
    """The (key, date) of the frozen values: they stand as published."""

    def merged(self, other: PublishCounts) -> PublishCounts:
        """These counts and ``other``'s together."""
        return PublishCounts(
            self.new + other.new,
            self.restated + other.restated,
            self.unchanged + other.unchanged,
            self.withdrawn + other.withdrawn,
            self.frozen + other.frozen,
            self.kept | other.kept,
        )


@dataclass(frozen=True)
class Forced:
    """An operator's restatement past the correction window: these commodities' assessments
    and indices' values, from ``first`` to ``last``."""

    keys: frozenset[tuple[str, int]]
    """(table, id): ``("assessments", commodity id)`` or ``("index_values", index id)``."""
    first: dt.date
    last: dt.date

    def covers(self, table: str, key: int, day: dt.date) -> bool:
        return (table, key) in self.keys and self.first <= day <= self.last

    def record(self) -> dict:
        """As the journal keeps it (a replay forces the same)."""
        keys = sorted([table, key] for table, key in self.keys)
        return {"keys": keys, "first": self.first.isoformat(), "last": self.last.isoformat()}

    @classmethod
    def recorded(cls, record: dict) -> Forced:
        keys = frozenset((table, int(key)) for table, key in record["keys"])
        first, last = (dt.date.fromisoformat(record[k]) for k in ("first", "last"))
        return cls(keys, first, last)


@dataclass(frozen=True)
class Restating:
    """Which published values a computation may change, and under what methodology."""

    version: str
    """The methodology version it runs under (recorded by every vintage it publishes)."""
    superseded: frozenset[str] = frozenset()
    """Versions it corrects: their values may change whatever their date."""
    frozen_before: dt.date | None = None
    """Fixed values of earlier dates are frozen (outside the correction window)."""
    forced: Forced | None = None
    """What an operator forced past the freeze."""
    segments: Segments = ()
    """The versions that govern the days it computes (empty: ``version`` every day)."""

    def version_on(self, day: dt.date) -> str:
        return version_on(self.segments, day, self.version)

    def running(self, version: str) -> Restating:
        """These rules for the days ``version`` governs."""
        if version == self.version:
            return self
        superseded = superseded_by(load_methodology(version))
        return replace(self, version=version, superseded=superseded, segments=())

    def may_change(self, previous, key: int) -> bool:
        if previous.status not in FIXED or self.frozen_before is None:
            return True
        if previous.date >= self.frozen_before:
            return True
        if self.forced is not None and self.forced.covers(
            previous.__tablename__, key, previous.date
        ):
            return True
        return previous.methodology_version in self.superseded

    def frozen(self, day: dt.date) -> bool:
        """Is a fixed value of ``day`` outside the correction window?"""
        return self.frozen_before is not None and day < self.frozen_before

    def record(self) -> dict:
        """As the journal keeps it (a replay restates the same)."""
        frozen = self.frozen_before.isoformat() if self.frozen_before else None
        forced = self.forced.record() if self.forced else None
        segments = [[start.isoformat(), version] for start, version in self.segments]
        return {"frozen_before": frozen, "forced": forced, "segments": segments}

    def recorded(self, record: dict | None) -> Restating:
        """These rules with the freeze of a journal's ``record`` (none: no freeze)."""
        if not record:
            return Restating(self.version, self.superseded)
        frozen = record.get("frozen_before")
        forced = record.get("forced")
        segments = tuple(
            (dt.date.fromisoformat(start), version) for start, version in record.get("segments", [])
        )
        return Restating(
            self.version,
            self.superseded,
            dt.date.fromisoformat(frozen) if frozen else None,
            Forced.recorded(forced) if forced else None,
            segments,
        )


def publish_vintages(
    session: Session,
    model: type[models.Assessment] | type[models.IndexValue],
    key_column: str,
    rows: Iterable[dict],
    *,
    now: dt.datetime,
    rules: Restating,
    status: str = "final",
    review: dict[str, float | None] | None = None,
) -> PublishCounts:
    """Each row carries ``key_column``, ``date``, ``inputs_hash`` and the value columns.

    A row whose inputs hash equals the current vintage's is skipped (unless it promotes a
    provisional vintage to final), and so is a row that publishes the same numbers as a
    fixed vintage made under a version the methodology supersedes (a correction of the
    methodology restates only what it changes), and a row that would change a frozen value
    (``rules``); otherwise the current vintage is superseded at ``now`` and the row becomes
    the next vintage. Replacing a final or restated vintage makes a ``restated`` one;
    replacing a provisional or withdrawn vintage keeps the requested ``status``.
    """
    published = PUBLISHED_COLUMNS[model.__table__.name]
    rows = list(rows)
    counts = PublishCounts()
    if not rows:
        return counts
    key = getattr(model, key_column)
    keys = {row[key_column] for row in rows}
    dates = [row["date"] for row in rows]
    current = {
        (getattr(v, key_column), v.date): v
        for v in session.scalars(
            select(model).where(
                key.in_(keys),
                model.date >= min(dates),
                model.date <= max(dates),
                model.superseded_at.is_(None),
            )
        )
    }
    to_insert, to_supersede = [], []
    for row in rows:
        previous = current.get((row[key_column], row["date"]))
        promotes = previous is not None and previous.status == PROVISIONAL != status
        if (
            previous is not None
            and not promotes
            and (
                previous.inputs_hash == row["inputs_hash"]
                or (
                    previous.methodology_version != row.get("methodology_version", rules.version)
                    and previous.status in FIXED
                    and all(getattr(previous, c) == row[c] for c in published)
                )
            )
        ):
            counts.unchanged += 1
            continue
        if previous is not None and not rules.may_change(previous, row[key_column]):
            counts.frozen += 1
            counts.kept.add((row[key_column], row["date"]))
            continue
        vintage = 1
        row_status = status
        if previous is None or previous.status in (PROVISIONAL, WITHDRAWN):
            counts.new += 1
        else:
            row_status = RESTATED
            counts.restated += 1
        if previous is not None:
            to_supersede.append(previous.id)
            vintage = previous.vintage + 1
        to_insert.append(
            {
                **row,
                "status": row_status,
                "vintage": vintage,
                "methodology_version": row.get("methodology_version", rules.version),
                "published_at": now,
                "superseded_at": None,
            }
        )
    flag_moves(session, model, key_column, to_insert, now, review)
    if to_insert:
        bump_publication_version(session, now)
        _supersede(session, model, to_supersede, now)
        session.execute(model.__table__.insert(), to_insert)
        take_in(session, model, {row[key_column] for row in to_insert}, now)
    return counts


def _supersede(session: Session, model, ids: list[int], now: dt.datetime) -> None:
    for start in range(0, len(ids), 1000):
        session.execute(
            update(model).where(model.id.in_(ids[start : start + 1000])).values(superseded_at=now)
        )


def withdraw_vintages(
    session: Session,
    model: type[models.Assessment] | type[models.IndexValue],
    key_column: str,
    dates: Iterable[dt.date],
    *,
    now: dt.datetime,
    rules: Restating,
) -> int:
    """Withdraw every current value on ``dates`` that ``rules`` lets change: each gets a next
    vintage with status ``withdrawn`` and no value (the rest of the row as it was). Returns
    how many."""
    dates = sorted(set(dates))
    if not dates:
        return 0
    current = session.scalars(
        select(model).where(
            model.date.in_(dates),
            model.superseded_at.is_(None),
            model.status.in_((*FIXED, PROVISIONAL)),
        )
    ).all()
    current = [v for v in current if rules.may_change(v, getattr(v, key_column))]
    if not current:
        return 0
    table = model.__table__
    cleared = dict.fromkeys((*VALUE_COLUMNS[table.name], "rationale", "flags"))
    cleared |= {"inputs_hash": WITHDRAWN}
    rows = [
        {c.key: getattr(v, c.key) for c in table.columns if c.key not in VINTAGE_COLUMNS}
        | cleared
        | {
            "status": WITHDRAWN,
            "vintage": v.vintage + 1,
            "methodology_version": rules.version_on(v.date),
            "published_at": now,
            "superseded_at": None,
        }
        for v in current
    ]
    bump_publication_version(session, now)
    _supersede(session, model, [v.id for v in current], now)
    session.execute(table.insert(), rows)
    take_in(session, model, {row[key_column] for row in rows}, now)
    return len(rows)


def bump_publication_version(session: Session, now: dt.datetime) -> None:
    """Count one more publishing transaction (readers key conditional answers on it).

    Called before a transaction writes its vintages: the row lock orders concurrent
    publishers on PostgreSQL, so one's vintages get higher ids than those of any publisher
    that committed before it (what :func:`store.standing.take_in` relies on), and a reader
    that sees the new version sees every row published with it.
    """
    bumped = session.execute(
        update(PublicationState)
        .where(PublicationState.id == 1)
        .values(version=PublicationState.version + 1, updated_at=now)
    )
    if bumped.rowcount == 0:
        session.add(PublicationState(id=1, version=1, updated_at=now))
        session.flush()
