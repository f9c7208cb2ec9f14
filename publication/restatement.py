"""The restatement sweep: recompute the correction window, publish corrections as notices.

Ingest marks a commodity's day when a late trade, a cancel or an amend touches it
(:class:`store.models.RestatementMark`). The sweep recomputes every published day of the
correction window (the methodology's last ``correction_window_days`` publication days, up
to today in the index's
zone); :func:`publication.vintage.publish_vintages` publishes a new vintage only where the
inputs hash changed, so values whose inputs did not change stay as they are. Each fixed
value replaced gets a correction notice (:mod:`publication.correction`). Marks inside the
window are cleared once swept; marks on days before the window are cleared without a
restatement (published values outside the correction window stand) and counted as
``expired``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.errors import InvalidInput, InvalidRange, UnknownIndex
from publication.correction import Cause, CorrectionNotice, Mark
from publication.fixing import ComputeReport, compute, default_calendar
from publication.vintage import Forced
from store import models
from store.models import FIXED

log = logging.getLogger("bcpi.restatement")


@dataclass
class SweepReport:
    window_start: dt.date
    window_end: dt.date
    swept_through: dt.date | None = None
    marks: int = 0
    expired: int = 0
    compute: ComputeReport | None = None
    corrections: list[CorrectionNotice] = field(default_factory=list)


def _last_published_day(session: Session, start: dt.date, today: dt.date) -> dt.date | None:
    """The latest day in ``start..today`` whose current index values are fixed (not provisional)."""
    return session.scalar(
        select(func.max(models.IndexValue.date)).where(
            models.IndexValue.superseded_at.is_(None),
            models.IndexValue.status.in_(FIXED),
            models.IndexValue.date >= start,
            models.IndexValue.date <= today,
        )
    )


def open_marks(session: Session, first: dt.date, last: dt.date) -> tuple[Mark, ...]:
    """The open restatement marks on ``first..last``: what a recomputation of them restates
    (a computation names them in its notices; the sweep clears them)."""
    rows = session.execute(
        select(
            models.Commodity.code,
            models.RestatementMark.date,
            models.RestatementMark.reason,
            models.RestatementMark.cause,
        )
        .join(models.Commodity, models.Commodity.id == models.RestatementMark.commodity_id)
        .where(
            models.RestatementMark.cleared_at.is_(None),
            models.RestatementMark.date >= first,
            models.RestatementMark.date <= last,
        )
    )
    return tuple((code, day, reason, cause or "") for code, day, reason, cause in rows)


def sweep(
    session: Session,
    now: dt.datetime,
    *,
    calendar: Calendar | None = None,
) -> SweepReport:
    """Recompute the correction window; publish restated vintages and their correction notices.

    ``calendar`` defaults to the calendar of the methodology in force.
    """
    if now.tzinfo is None:
        raise InvalidInput("now", "must be timezone-aware")
    calendar = calendar or default_calendar()
    today = calendar.local_date(now)
    window_days = calendar.methodology.publication.correction_window_days
    start = calendar.publication_days_before(today, window_days)
    report = SweepReport(window_start=start, window_end=today)

    open_marks = session.execute(
        select(
            models.RestatementMark.id,
            models.Commodity.code,
            models.RestatementMark.date,
            models.RestatementMark.reason,
            models.RestatementMark.cause,
        )
        .join(models.Commodity, models.Commodity.id == models.RestatementMark.commodity_id)
        .where(models.RestatementMark.cleared_at.is_(None), models.RestatementMark.date <= today)
        .with_for_update(of=models.RestatementMark)
    ).all()
    inside = [(code, day, reason, cause or "") for _, code, day, reason, cause in open_marks]
    inside = [m for m in inside if m[1] >= report.window_start]
    report.marks = len(inside)
    report.expired = len(open_marks) - len(inside)

    last = _last_published_day(session, report.window_start, today)
    report.swept_through = last
    if last is not None:
        cause = Cause(reason="operator", detail="restatement sweep", marks=tuple(inside))
        report.compute = compute(session, start, last, now=now, calendar=calendar, cause=cause)
        report.corrections = report.compute.corrections
    if open_marks:
        ids = [row[0] for row in open_marks]
        for start in range(0, len(ids), 1000):
            session.execute(
                update(models.RestatementMark)
                .where(models.RestatementMark.id.in_(ids[start : start + 1000]))
                .values(cleared_at=now)
            )
    session.flush()
    if report.expired:
        log.warning(
            "%d restatement mark(s) before the correction window (from %s) cleared unrestated",
            report.expired,
            report.window_start,
        )
    log.info(
        "restatement sweep %s..%s: %d marks, %d corrections",
        report.window_start,
        last,
        report.marks,
        len(report.corrections),
    )
    return report


def force_restatement(
    session: Session,
    index_code: str,
    first: dt.date,
    last: dt.date,
    reason: str,
    now: dt.datetime,
    *,
    calendar: Calendar | None = None,
) -> ComputeReport:
    """An operator's restatement of ``index_code`` from ``first`` to ``last``, past the
    correction window: its constituents' assessments and the values of every index that
    rests on them are recomputed and published, each change with a notice marked forced
    and ``reason`` as its cause."""
    if last < first:
        raise InvalidRange(f"--to {last} is before --from {first}", start=first, end=last)
    if not reason.strip():
        raise InvalidInput("reason", "a forced restatement needs the operator's reason")
    index = session.scalar(
        select(models.IndexDefinition).where(models.IndexDefinition.code == index_code)
    )
    if index is None:
        raise UnknownIndex(index_code)
    members = set(
        session.scalars(
            select(models.IndexConstituent.commodity_id).where(
                models.IndexConstituent.index_id == index.id
            )
        )
    )
    resting = set(
        session.scalars(
            select(models.IndexConstituent.index_id).where(
                models.IndexConstituent.commodity_id.in_(members)
            )
        )
    )
    keys = {("assessments", c) for c in members} | {("index_values", i) for i in resting}
    forced = Forced(frozenset(keys), first, last)
    cause = Cause(reason="operator", detail=reason.strip(), forced=True)
    return compute(session, first, last, now=now, calendar=calendar, cause=cause, forced=forced)
