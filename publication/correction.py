"""Correction notices: every fixed index value that a later vintage restates or withdraws is
announced with its old and new value and the reason.

:func:`record_corrections` runs in the transaction that published the new vintages (every
path that can change a published value calls it: a computation over published days, the
restatement sweep, a rebalance) and writes one notice per changed value. The reason is the
methodology's declared change when the value was computed under another version (a
``calendar_correction`` for 2025.2), ``calendar_correction`` for a withdrawal, otherwise the
restatement marks that can move the value, or that its inputs changed on recomputation.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from core.methodology import load_methodology
from store import models
from store.models import FIXED, RESTATED, WITHDRAWN, Correction

REASON_LIMIT = 1000
Mark = tuple[str, dt.date, str]
"""A restatement mark: commodity code, day, reason (``late_trade``, …)."""


@dataclass(frozen=True)
class CorrectionNotice:
    """A published notice: ``new_value`` is ``None`` when the value was withdrawn."""

    index: str
    date: dt.date
    old_value: float
    new_value: float | None
    old_vintage: int
    new_vintage: int
    reason: str
    published_at: dt.datetime


def _constituent_codes(session: Session) -> dict[int, set[str]]:
    rows = session.execute(
        select(models.IndexConstituent.index_id, models.Commodity.code).join(
            models.Commodity, models.Commodity.id == models.IndexConstituent.commodity_id
        )
    )
    out: dict[int, set[str]] = defaultdict(set)
    for index_id, code in rows:
        out[index_id].add(code)
    return out


def _marked(marks: Iterable[Mark], members: set[str], day: dt.date) -> str:
    """The marks that can move this value: its constituents' changes on or before its date."""
    causes = sorted(
        {
            f"{reason} {code} {when.isoformat()}"
            for code, when, reason in marks
            if code in members and when <= day
        }
    )
    if not causes:
        return "inputs changed on recomputation"
    text = "; ".join(causes)
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def _methodology_change(old_version: str, new_version: str) -> str:
    new = load_methodology(new_version)
    return new.change if new.supersedes == old_version and new.change else "methodology_change"


def record_corrections(
    session: Session, now: dt.datetime, marks: Iterable[Mark] = ()
) -> list[CorrectionNotice]:
    """A notice for every fixed index value that a vintage published at ``now`` restated or
    withdrew; ``marks`` are the restatement marks the computation swept."""
    marks = list(marks)
    new = aliased(models.IndexValue)
    old = aliased(models.IndexValue)
    replaced = session.execute(
        select(
            new.index_id,
            models.IndexDefinition.code,
            new.date,
            old.value,
            new.value,
            old.vintage,
            new.vintage,
            new.status,
            old.methodology_version,
            new.methodology_version,
        )
        .join(
            old,
            and_(
                old.index_id == new.index_id,
                old.date == new.date,
                old.vintage == new.vintage - 1,
            ),
        )
        .join(models.IndexDefinition, models.IndexDefinition.id == new.index_id)
        .where(
            new.published_at == now,
            new.status.in_((RESTATED, WITHDRAWN)),
            old.superseded_at == now,
            old.status.in_(FIXED),
        )
        .order_by(new.date, new.index_id)
    ).all()
    members = _constituent_codes(session) if replaced else {}
    notices = []
    for index_id, code, day, old_value, new_value, old_v, new_v, status, old_m, new_m in replaced:
        if old_m != new_m:
            reason = _methodology_change(old_m, new_m)
        elif status == WITHDRAWN:
            reason = "calendar_correction"
        else:
            reason = _marked(marks, members.get(index_id, set()), day)
        session.add(
            Correction(
                index_id=index_id,
                date=day,
                old_vintage=old_v,
                new_vintage=new_v,
                old_value=old_value,
                new_value=new_value,
                reason=reason,
                published_at=now,
            )
        )
        notices.append(CorrectionNotice(code, day, old_value, new_value, old_v, new_v, reason, now))
    session.flush()
    return notices


def published_notices(
    session: Session,
    *,
    since: dt.datetime | None = None,
    as_of: dt.datetime | None = None,
    index: str | None = None,
) -> list[CorrectionNotice]:
    """Notices published in ``[since, as_of]``, oldest first; only ``index``'s when given."""
    query = select(Correction, models.IndexDefinition.code).join(
        models.IndexDefinition, models.IndexDefinition.id == Correction.index_id
    )
    if since is not None:
        query = query.where(Correction.published_at >= since)
    if as_of is not None:
        query = query.where(Correction.published_at <= as_of)
    if index is not None:
        query = query.where(models.IndexDefinition.code == index)
    return [
        CorrectionNotice(
            code,
            row.date,
            row.old_value,
            row.new_value,
            row.old_vintage,
            row.new_vintage,
            row.reason,
            row.published_at,
        )
        for row, code in session.execute(query.order_by(Correction.published_at, Correction.id))
    ]
