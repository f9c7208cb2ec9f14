"""Correction notices: the one door through which a published value changes.

Every fixed index value that a later vintage restates or withdraws is announced with its
old and new value, the reason (one of ``store.models.REASONS``), its cause and whether an
operator forced it. :func:`record_corrections` runs in the transaction that published the
new vintages; every path that can change a published value calls it (a computation over
published days, the restatement sweep, a rebalance, an operator's forced restatement).
The reason, in this order:

1. the methodology's declared change (``calendar_correction``, ``methodology_change``)
   when the old value was computed under a version the new one supersedes;
2. ``calendar_correction`` for a withdrawal (the date is no longer a publication day);
3. ``operator`` for a forced restatement, the operator's words as the cause;
4. the restatement marks that can move the value (a change to one of its constituents on
   or before its date): ``trade_amended``, then ``trade_cancelled``, then ``late_trade``,
   the batches and trades as the cause;
5. the computation's own reason (``rebalance``, or ``operator`` for a recomputation that
   nothing else explains).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from core.methodology import load_methodology
from publication.vintage import Restating
from store import models
from store.models import FIXED, RESTATED, WITHDRAWN, Correction

CAUSE_LIMIT = 1000
Mark = tuple[str, dt.date, str, str]
"""A restatement mark: commodity code, day, reason (``late_trade``, …), cause."""
MARK_PRECEDENCE = ("trade_amended", "trade_cancelled", "late_trade")


@dataclass(frozen=True)
class Cause:
    """What a computation that may change published values does it for."""

    reason: str = "operator"
    """The reason of a change nothing else explains."""
    detail: str | None = None
    forced: bool = False
    """An operator's restatement past the correction window."""
    marks: tuple[Mark, ...] = ()


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
    cause: str | None
    forced: bool
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


def _clip(text: str) -> str:
    return text if len(text) <= CAUSE_LIMIT else text[: CAUSE_LIMIT - 1] + "…"


def _marked(marks: Iterable[Mark], members: set[str], day: dt.date) -> tuple[str, str] | None:
    """The reason and cause of the marks that can move this value: its constituents'
    changes on or before its date."""
    relevant = [m for m in marks if m[0] in members and m[1] <= day]
    if not relevant:
        return None
    reason = next(r for r in MARK_PRECEDENCE if any(m[2] == r for m in relevant))
    causes = sorted({f"{code} {when.isoformat()}: {why}" for code, when, _, why in relevant})
    return reason, _clip("; ".join(causes))


def _methodology_change(old_version: str, new_version: str) -> str:
    new = load_methodology(new_version)
    return new.change if new.supersedes == old_version and new.change else "methodology_change"


def _why(cause: Cause, members: set[str], row, frozen: bool) -> tuple[str, str | None, bool]:
    day, status, old_version, new_version = row.date, row.status, row.old_m, row.new_m
    if old_version != new_version:
        change = _methodology_change(old_version, new_version)
        adopted = cause.reason == "methodology_change" and cause.detail
        return (
            change,
            cause.detail if adopted else f"methodology {new_version}",
            cause.forced and frozen,
        )
    if status == WITHDRAWN:
        return "calendar_correction", "not a publication day", False
    if cause.forced:
        return "operator", cause.detail, frozen
    marked = _marked(cause.marks, members, day)
    if marked is not None:
        return (*marked, False)
    return cause.reason, cause.detail, False


def record_corrections(
    session: Session, now: dt.datetime, cause: Cause = Cause(), rules: Restating | None = None
) -> list[CorrectionNotice]:
    """A notice for every fixed index value that a vintage published at ``now`` restated or
    withdrew (``forced`` where it was outside the correction window of ``rules``)."""
    new = aliased(models.IndexValue)
    old = aliased(models.IndexValue)
    replaced = session.execute(
        select(
            new.index_id,
            models.IndexDefinition.code,
            new.date,
            old.value.label("old_value"),
            new.value.label("new_value"),
            old.vintage.label("old_vintage"),
            new.vintage.label("new_vintage"),
            new.status,
            old.methodology_version.label("old_m"),
            new.methodology_version.label("new_m"),
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
    for row in replaced:
        frozen = rules is not None and rules.frozen(row.date)
        reason, detail, forced = _why(cause, members.get(row.index_id, set()), row, frozen)
        session.add(
            Correction(
                index_id=row.index_id,
                date=row.date,
                old_vintage=row.old_vintage,
                new_vintage=row.new_vintage,
                old_value=row.old_value,
                new_value=row.new_value,
                reason=reason,
                cause=detail,
                forced=forced,
                published_at=now,
            )
        )
        notices.append(
            CorrectionNotice(
                row.code,
                row.date,
                row.old_value,
                row.new_value,
                row.old_vintage,
                row.new_vintage,
                reason,
                detail,
                forced,
                now,
            )
        )
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
            row.cause,
            row.forced,
            row.published_at,
        )
        for row, code in session.execute(query.order_by(Correction.published_at, Correction.id))
    ]
