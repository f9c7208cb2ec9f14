"""Publish computed numbers as vintages: a changed input makes a new vintage, never an edit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store import models
from store.models_publication import PublicationState


@dataclass
class PublishCounts:
    new: int = 0
    restated: int = 0
    unchanged: int = 0


def publish_vintages(
    session: Session,
    model: type[models.Assessment] | type[models.IndexValue],
    key_column: str,
    rows: Iterable[dict],
    *,
    now: dt.datetime,
    methodology_version: str,
    status: str = "final",
) -> PublishCounts:
    """Each row carries ``key_column``, ``date``, ``inputs_hash`` and the value columns.

    A row whose inputs hash equals the current vintage's is skipped (unless it promotes a
    provisional vintage to final); otherwise the current vintage is superseded at ``now``
    and the row becomes the next vintage. Replacing a final or restated vintage makes a
    ``restated`` one; replacing a provisional vintage keeps the requested ``status``.
    """
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
        promotes = previous is not None and previous.status == "provisional" != status
        if previous is not None and previous.inputs_hash == row["inputs_hash"] and not promotes:
            counts.unchanged += 1
            continue
        vintage = 1
        row_status = status
        if previous is None or previous.status == "provisional":
            counts.new += 1
        else:
            row_status = "restated"
            counts.restated += 1
        if previous is not None:
            to_supersede.append(previous.id)
            vintage = previous.vintage + 1
        to_insert.append(
            {
                **row,
                "status": row_status,
                "vintage": vintage,
                "methodology_version": methodology_version,
                "published_at": now,
                "superseded_at": None,
            }
        )
    for start in range(0, len(to_supersede), 1000):
        session.execute(
            update(model)
            .where(model.id.in_(to_supersede[start : start + 1000]))
            .values(superseded_at=now)
        )
    if to_insert:
        session.execute(model.__table__.insert(), to_insert)
        bump_publication_version(session, now)
    return counts


def bump_publication_version(session: Session, now: dt.datetime) -> None:
    """Count one more publishing transaction (readers key conditional answers on it).

    The row lock also orders concurrent publishers on PostgreSQL, so a reader that sees the
    new version sees every row published with it.
    """
    bumped = session.execute(
        update(PublicationState)
        .where(PublicationState.id == 1)
        .values(version=PublicationState.version + 1, updated_at=now)
    )
    if bumped.rowcount == 0:
        session.add(PublicationState(id=1, version=1, updated_at=now))
        session.flush()
