"""The restatement sweep: recompute the correction window, publish corrections as notices.

Ingest marks a commodity's day when a late trade, a cancel or an amend touches it
(:class:`store.models.RestatementMark`). The sweep recomputes every published day of the
correction window (the last ``window_days`` trading days of the methodology's calendar, up
to today in Beijing); :func:`index.publish.publish_vintages` publishes a new vintage only where the
inputs hash changed, so values whose inputs did not change stay as they are. Each final
value replaced by a ``restated`` vintage gets a correction notice (index, date, old value,
new value, reason). Marks inside the window are cleared once swept; marks on days before
the window are cleared without a restatement (published values outside the correction
window stand) and counted as ``expired``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session, aliased

from bcpi.errors import InvalidInput
from index.methodology import Methodology, in_force
from index.service import BEIJING, ComputeReport, compute
from index.windows import Calendar, MethodologyCalendar, step_trading_day
from store import models
from store.models_publication import Correction

log = logging.getLogger("bcpi.restatement")

REASON_LIMIT = 1000


@dataclass(frozen=True)
class Restatement:
    index_code: str
    date: dt.date
    old_value: float
    new_value: float
    old_vintage: int
    new_vintage: int
    reason: str


@dataclass
class SweepReport:
    window_start: dt.date
    window_end: dt.date
    swept_through: dt.date | None = None
    marks: int = 0
    expired: int = 0
    compute: ComputeReport | None = None
    corrections: list[Restatement] = field(default_factory=list)


def window_start(today: dt.date, window_days: int, calendar: Calendar) -> dt.date:
    """First day of the correction window: ``window_days`` trading days ending by today."""
    day = today if calendar.is_trading_day(today) else step_trading_day(calendar, today, -1)
    for _ in range(window_days - 1):
        day = step_trading_day(calendar, day, -1)
    return day


def _last_published_day(session: Session, start: dt.date, today: dt.date) -> dt.date | None:
    """The latest day in ``start..today`` whose current index values are fixed (not provisional)."""
    return session.scalar(
        select(func.max(models.IndexValue.date)).where(
            models.IndexValue.superseded_at.is_(None),
            models.IndexValue.status != "provisional",
            models.IndexValue.date >= start,
            models.IndexValue.date <= today,
        )
    )


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


def _reason(marks: list[tuple[str, dt.date, str]], members: set[str], day: dt.date) -> str:
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


def _restated_values(session: Session, now: dt.datetime) -> list[tuple]:
    """(index id, code, date, old value, new value, old vintage, new vintage) published at now."""
    new = aliased(models.IndexValue)
    old = aliased(models.IndexValue)
    return session.execute(
        select(
            new.index_id,
            models.IndexDefinition.code,
            new.date,
            old.value,
            new.value,
            old.vintage,
            new.vintage,
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
        .where(new.published_at == now, new.status == "restated", old.superseded_at == now)
        .order_by(new.date, new.index_id)
    ).all()


def sweep(
    session: Session,
    now: dt.datetime,
    window_days: int = 5,
    *,
    methodology: Methodology | None = None,
    calendar: Calendar | None = None,
) -> SweepReport:
    """Recompute the correction window; publish restated vintages and their correction notices.

    ``methodology`` defaults to the version in force, ``calendar`` to its trading calendar.
    """
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise InvalidInput("window_days", f"must be an integer >= 1, got {window_days!r}")
    if now.tzinfo is None:
        raise InvalidInput("now", "must be timezone-aware")
    today = now.astimezone(BEIJING).date()
    calendar = calendar or MethodologyCalendar((methodology or in_force()).calendar)
    start = window_start(today, window_days, calendar)
    report = SweepReport(window_start=start, window_end=today)

    open_marks = session.execute(
        select(
            models.RestatementMark.id,
            models.Commodity.code,
            models.RestatementMark.date,
            models.RestatementMark.reason,
        )
        .join(models.Commodity, models.Commodity.id == models.RestatementMark.commodity_id)
        .where(models.RestatementMark.cleared_at.is_(None), models.RestatementMark.date <= today)
        .with_for_update(of=models.RestatementMark)
    ).all()
    inside = [(code, day, reason) for _, code, day, reason in open_marks]
    inside = [m for m in inside if m[1] >= report.window_start]
    report.marks = len(inside)
    report.expired = len(open_marks) - len(inside)

    last = _last_published_day(session, report.window_start, today)
    report.swept_through = last
    if last is not None:
        report.compute = compute(
            session, start, last, now=now, methodology=methodology, calendar=calendar
        )
        members = _constituent_codes(session)
        for index_id, code, day, old_value, new_value, old_vintage, new_vintage in _restated_values(
            session, now
        ):
            reason = _reason(inside, members.get(index_id, set()), day)
            session.add(
                Correction(
                    index_id=index_id,
                    date=day,
                    old_vintage=old_vintage,
                    new_vintage=new_vintage,
                    old_value=old_value,
                    new_value=new_value,
                    reason=reason,
                    published_at=now,
                )
            )
            report.corrections.append(
                Restatement(code, day, old_value, new_value, old_vintage, new_vintage, reason)
            )
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
