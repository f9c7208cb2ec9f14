"""The journal of computations: what each run that can publish values ran under.

:func:`journal_computation` is called at the start of :func:`index.service.compute` and
:func:`index.intraday.publish_provisional`, in their transaction (a rolled-back run leaves
no entry). ``bcpi audit replay`` runs the entries again, in order, against batches
re-ingested from the archive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from index.windows import Calendar, step_trading_day, trading_days
from store import models
from store.models_audit import AuditComputation
from store.models_feeds import FxRate


def reference_hash(session: Session) -> str:
    """A digest of the reference data a computation reads: commodities (id order is the
    kernel's commodity order), index definitions and every weight set."""
    parts = {
        "commodities": session.execute(
            select(models.Commodity.id, models.Commodity.code).order_by(models.Commodity.id)
        ).all(),
        "indices": session.execute(
            select(
                models.IndexDefinition.id,
                models.IndexDefinition.code,
                models.IndexDefinition.kind,
                models.IndexDefinition.base_date,
                models.IndexDefinition.base_value,
            ).order_by(models.IndexDefinition.id)
        ).all(),
        "weights": session.execute(
            select(
                models.IndexConstituent.index_id,
                models.IndexConstituent.effective_from,
                models.IndexConstituent.commodity_id,
                models.IndexConstituent.weight,
            ).order_by(
                models.IndexConstituent.index_id,
                models.IndexConstituent.effective_from,
                models.IndexConstituent.commodity_id,
            )
        ).all(),
    }
    text = json.dumps(
        {name: [list(row) for row in rows] for name, rows in parts.items()},
        default=lambda value: value.isoformat() if isinstance(value, dt.date) else repr(value),
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def calendar_days(calendar: Calendar, start: dt.date, end: dt.date) -> list[str]:
    """The trading days from the one before ``start`` through ``end`` (ISO dates)."""
    previous = step_trading_day(calendar, start, -1)
    return [d.isoformat() for d in trading_days(calendar, previous, end)]


def journal_computation(
    session: Session,
    kind: str,
    start: dt.date,
    end: dt.date,
    now: dt.datetime,
    methodology_version: str,
    calendar: Calendar,
) -> None:
    last_batch = session.scalar(select(func.max(models.IngestBatch.id)))
    last_fx = session.scalar(select(func.max(FxRate.id)))
    session.add(
        AuditComputation(
            kind=kind,
            start=start,
            end=end,
            computed_at=now,
            methodology_version=methodology_version,
            trading_days=calendar_days(calendar, start, end),
            last_batch_id=last_batch,
            last_fx_id=last_fx,
            reference_hash=reference_hash(session),
        )
    )
    session.flush()
