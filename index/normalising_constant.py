"""Normalising constants: the level an index carries into each weight period, stored once
per (index, first date of the period)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
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
    """Store each constant once per (index, effective date); a recomputed one is updated."""
    if not rows:
        return
    existing = {
        (c.index_id, c.effective_from): c for c in session.scalars(select(NormalisingConstant))
    }
    for row in rows:
        current = existing.get((row["index_id"], row["effective_from"]))
        reference_date = row["reference_date"]
        if current is None:
            session.add(
                NormalisingConstant(
                    index_id=row["index_id"],
                    effective_from=row["effective_from"],
                    reference_date=reference_date,
                    value=row["value"],
                    methodology_version=row["methodology_version"],
                    computed_at=now,
                )
            )
        elif (current.value, current.reference_date) != (row["value"], reference_date):
            current.value, current.reference_date = row["value"], reference_date
            current.methodology_version = row["methodology_version"]
            current.computed_at = now
    session.flush()
