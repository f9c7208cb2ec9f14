"""Index history, latest value, vintages and explanations."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.answers import SERIES_FORMATS, answer
from api.auth import OptionalReader, ReadKey, audience
from api.deps import CalendarDep, ReadSessionDep
from api.explain import explain
from api.formats import Format, negotiate
from api.params import AsOf, SeriesQueryDep, date_range, instant
from api.published import (
    VINTAGE_SCHEMA,
    LatestStatus,
    latest_value,
    table_response,
    vintage_envelope,
    vintage_frames,
    vintages_of_date,
)
from api.routes.catalogue import definition_by_code
from api.schemas import Explanation, LatestValue, Series, VintageRange, Vintages
from core.errors import InvalidInput, NotPublished

router = APIRouter(prefix="/v1/indices", tags=["indices"], dependencies=[ReadKey])

Day = Annotated[dt.date, Query(description="The value's date")]
Format = Annotated[
    Format | None,
    Query(description="Overrides Accept (as for series)"),
]
VINTAGE_FORMATS = {
    **SERIES_FORMATS,
    200: {
        **SERIES_FORMATS[200],
        "description": "JSON: `date` gives the date's vintages (`Vintages`), `start`/`end` "
        "every vintage of the range with its real-time period (`VintageRange`); CSV, "
        "Parquet and Arrow carry the range's rows (one date's with `date`)",
    },
}


@router.get(
    "/{code}/series",
    response_model=Series,
    responses=SERIES_FORMATS,
    summary="History of one index in JSON, CSV, Parquet or Arrow",
)
def series(code: str, query: SeriesQueryDep, request: Request):
    return answer(request, "index", query, code=code)


@router.get("/{code}/latest", response_model=LatestValue, summary="The newest value")
def latest(
    code: str,
    session: ReadSessionDep,
    as_of: AsOf = None,
    status: Annotated[
        LatestStatus | None,
        Query(
            description="The newest value of this status: `final` is the newest fixed value "
            "(final or restated), `provisional` today's intraday value, `restated` the newest "
            "corrected one. Without it, the newest value whatever its status"
        ),
    ] = None,
) -> LatestValue:
    definition = definition_by_code(session, code)
    as_of = instant("as_of", as_of)
    answer = latest_value(session, definition, as_of, status)
    if answer is None:
        what = f"no {status} value" if status else "no published value"
        raise NotPublished(f"index {code} has {what}", code=code)
    return answer


@router.get(
    "/{code}/vintages",
    response_model=Vintages | VintageRange,
    responses=VINTAGE_FORMATS,
    summary="Every vintage of one date, or of a date range with real-time periods",
)
def vintages(
    code: str,
    session: ReadSessionDep,
    request: Request,
    date: Annotated[dt.date | None, Query(description="One date (not with start/end)")] = None,
    start: Annotated[dt.date | None, Query(description="First date of a range, inclusive")] = None,
    end: Annotated[dt.date | None, Query(description="Last date of a range, inclusive")] = None,
    as_of: AsOf = None,
    format: Format = None,
):
    """With `date`, that date's vintages; with `start` and/or `end`, every vintage of every
    date in the range, each with `realtime_start` (its publication instant) and
    `realtime_end` (the instant a later vintage replaced it, or 9999-12-31 while current),
    as ALFRED gives them."""
    if date is not None and (start is not None or end is not None):
        raise InvalidInput("date", "give either date (one date) or start/end (a range), not both")
    if date is None and start is None and end is None:
        raise InvalidInput("date", "give date (one date), or start and/or end (a range)")
    date_range(start, end)
    definition = definition_by_code(session, code)
    as_of = instant("as_of", as_of)
    fmt = negotiate(format, request.headers.get("accept"))
    if date is None or fmt != "json":
        first, last = (date, date) if date is not None else (start, end)
        return table_response(
            request,
            fmt,
            lambda connection: vintage_frames(connection, definition.id, first, last, as_of),
            VINTAGE_SCHEMA,
            vintage_envelope(code, first, last, as_of),
            f"{code}-vintages",
        )
    return vintages_of_date(session, definition, date, as_of)


@router.get(
    "/{code}/explain",
    response_model=Explanation,
    summary="Why a value is what it is: constituents, weights, assessments, trades, exclusions",
)
def explain_value(
    code: str,
    date: Day,
    session: ReadSessionDep,
    calendar: CalendarDep,
    reader: OptionalReader,
    as_of: AsOf = None,
):
    """Anyone sees the aggregates (no trade, price or exchange; volumes and the price range
    only from the methodology's disclosure minimum of trades and exchanges); an exchange key
    also its own trades, used or excluded; an administrator or auditor key every trade."""
    definition = definition_by_code(session, code)
    return explain(session, definition, date, instant("as_of", as_of), calendar, audience(reader))
