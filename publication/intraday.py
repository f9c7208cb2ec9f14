"""Intraday: provisional assessments and index values from the trades so far.

The scheduler calls :func:`publish_provisional` every intraday interval. Its publication
day is the one whose window holds ``now`` (after the cut-off, the next publication day).
Once the fixing has published a day's final values, provisional runs leave it alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.errors import InvalidInput
from index.computation import Computation
from publication.fixing import (
    Published,
    default_calendar,
    publish_assessments,
    publish_index_values,
)
from publication.ohlc import observe
from store import models
from store.ledger import journal_computation
from store.models import FIXED, PROVISIONAL


@dataclass(kw_only=True)
class IntradayReport(Published):
    observed_at: dt.datetime
    day: dt.date
    fixed: bool = False
    """The day's final values are already published: nothing provisional was computed."""
    observations: int = 0


def publish_provisional(
    session: Session, now: dt.datetime, *, calendar: Calendar | None = None
) -> IntradayReport:
    """Assess the open window up to ``now`` and publish provisional index values.

    Each run also records every index's value at ``now`` and updates the day's OHLC.
    """
    if now.tzinfo is None:
        raise InvalidInput("now", "must be timezone-aware")
    calendar = calendar or default_calendar()
    computation = Computation.load(session, calendar)
    day = calendar.window_day(now)
    journal_computation(session, "provisional", day, day, now, calendar)
    report = IntradayReport(observed_at=now, day=day)
    fixed = session.scalar(
        select(models.IndexValue.id)
        .where(
            models.IndexValue.date == day,
            models.IndexValue.superseded_at.is_(None),
            models.IndexValue.status.in_(FIXED),
        )
        .limit(1)
    )
    if fixed is not None:
        report.fixed = True
        return report
    publish_assessments(
        session, computation, [day], now, report, status=PROVISIONAL, until=now, skip_fixed=True
    )
    rows = publish_index_values(
        session,
        computation,
        day,
        now,
        report,
        status=PROVISIONAL,
        only_day=day,
        include_provisional=True,
    )
    observe(session, day, now, rows)
    report.observations = len(rows)
    return report
