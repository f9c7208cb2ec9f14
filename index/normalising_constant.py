"""Normalising constants: the level an index carries into each weight period, per (index,
first date of the period). A stored constant is never edited: one that a recomputation
changes is a new vintage, and the one it replaces keeps its value with ``superseded_at``,
so the level that earlier values rest on can always be shown (``constants_at``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.methodology import Methodology
from index.levels import IndexResult
from store.models import NormalisingConstant


def constant_rows(result: IndexResult, history, methodology: Methodology) -> list[dict]:
    """The normalising constant of every period that has begun, by its first date."""
    chained = result.chained
    rows = []
    used = set(chained.period_of_row[chained.period_of_row >= 0].tolist())
    for p, start in enumerate(chained.period_starts):
        if p not in used:
            continue
        reference_row = int(result.rows[chained.period_reference[p]])
        rows.append(
            {
                "index_id": result.plan.index_id,
                "effective_from": start,
                "reference_date": history.days[reference_row].item(),
                "value": float(chained.constants[p]),
                "methodology_version": methodology.version,
            }
        )
    return rows


def save_constants(session: Session, rows: list[dict], now: dt.datetime) -> None:
    """Store each constant whose value or reference date is new as the next vintage of its
    (index, effective date); an unchanged one is left as it is."""
    if not rows:
        return
    current = {
        (c.index_id, c.effective_from): c
        for c in session.scalars(
            select(NormalisingConstant).where(NormalisingConstant.superseded_at.is_(None))
        )
    }
    for row in rows:
        previous = current.get((row["index_id"], row["effective_from"]))
        if previous is not None and (previous.value, previous.reference_date) == (
            row["value"],
            row["reference_date"],
        ):
            continue
        if previous is not None:
            previous.superseded_at = now
            session.flush()
        session.add(
            NormalisingConstant(
                **row, computed_at=now, vintage=previous.vintage + 1 if previous else 1
            )
        )
    session.flush()


def constants_at(
    session: Session, index_id: int, as_of: dt.datetime | None = None
) -> list[NormalisingConstant]:
    """The index's constants in force at ``as_of`` (now, when None), oldest period first."""
    query = select(NormalisingConstant).where(NormalisingConstant.index_id == index_id)
    if as_of is None:
        query = query.where(NormalisingConstant.superseded_at.is_(None))
    else:
        query = query.where(
            NormalisingConstant.computed_at <= as_of,
            or_(
                NormalisingConstant.superseded_at.is_(None),
                NormalisingConstant.superseded_at > as_of,
            ),
        )
    return list(session.scalars(query.order_by(NormalisingConstant.effective_from)))
