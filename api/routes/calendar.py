"""The publication calendar: every publication day of a year with its fixing instant."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import CalendarDep

router = APIRouter(prefix="/v1", tags=["catalogue"])

FIRST_YEAR, LAST_YEAR = 2000, 2100


class PublicationDayOut(BaseModel):
    date: dt.date
    fixing_at: dt.datetime
    """When the day's fixing is computed: its cut-off plus the reporting grace of the
    methodology version in force that day."""


class CalendarYearOut(BaseModel):
    year: int
    provisional: bool
    """The year is known only by the statutory holidays' rule (no State Council notice in
    the holidays package or the operator's override file yet)."""
    days: list[PublicationDayOut]


@router.get(
    "/calendar",
    response_model=CalendarYearOut,
    summary="Publication days of a year, each with the instant its fixing is computed",
)
def calendar_year(
    calendar: CalendarDep,
    year: Annotated[
        int | None,
        Query(ge=FIRST_YEAR, le=LAST_YEAR, description="The year (default: this year)"),
    ] = None,
) -> CalendarYearOut:
    """Every publication day of ``year`` under the methodology in force, with ``fixing_at``
    in the index's zone (the cut-off plus the reporting grace of the version in force on
    that day: 15:05 under 2026.1, which waits five minutes for trades executed by 15:00);
    ``provisional`` while the year rests on the holidays' rule alone."""
    answer = calendar.year(year or calendar.today().year)
    return CalendarYearOut(
        year=answer.year,
        provisional=answer.provisional,
        days=[PublicationDayOut(date=d.date, fixing_at=d.fixing_at) for d in answer.days],
    )
