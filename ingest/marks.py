"""Mark published days for restatement when their trades change after publication.

A (commodity, publication day) is published when it has a current assessment
(``superseded_at IS NULL``). Late trades, cancels, amends and released held trades in such
a day's window insert a ``RestatementMark`` (reason ``late_trade``, ``trade_cancelled`` or
``trade_amended``, with the batch and trade that caused it); the restatement sweep
recomputes the day and clears it. An open mark with the same reason is not repeated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from store import models


def published_days(session: Session, pairs: set[tuple[int, dt.date]]) -> set[tuple[int, dt.date]]:
    """The (commodity id, day) pairs among ``pairs`` that have a current assessment."""
    if not pairs:
        return set()
    days = [d for _, d in pairs]
    current = session.execute(
        select(models.Assessment.commodity_id, models.Assessment.date).where(
            models.Assessment.superseded_at.is_(None),
            models.Assessment.commodity_id.in_(sorted({c for c, _ in pairs})),
            models.Assessment.date >= min(days),
            models.Assessment.date <= max(days),
        )
    )
    return {(c, d) for c, d in current} & pairs


def mark_published_days(
    session: Session, candidates: Iterable[tuple[int, dt.date, str, str]], *, now: dt.datetime
) -> int:
    """Insert a mark for each (commodity id, day, reason, cause) whose day is published."""
    causes = {(int(c), d, r): why for c, d, r, why in candidates if c is not None and d}
    if not causes:
        return 0
    published = published_days(session, {(c, d) for c, d, _ in causes})
    wanted = {m for m in causes if (m[0], m[1]) in published}
    if not wanted:
        return 0
    open_marks = {
        (c, d, r)
        for c, d, r in session.execute(
            select(
                models.RestatementMark.commodity_id,
                models.RestatementMark.date,
                models.RestatementMark.reason,
            ).where(
                models.RestatementMark.cleared_at.is_(None),
                tuple_(models.RestatementMark.commodity_id, models.RestatementMark.date).in_(
                    sorted({(c, d) for c, d, _ in wanted})
                ),
            )
        )
    }
    new = sorted(wanted - open_marks)
    session.add_all(
        models.RestatementMark(
            commodity_id=c, date=d, reason=r, cause=causes[(c, d, r)][:200], marked_at=now
        )
        for c, d, r in new
    )
    session.flush()
    return len(new)
