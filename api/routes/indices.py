"""Index history, latest value, vintages and explanations."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from api.answers import SERIES_FORMATS, series_response, series_spec
from api.auth import OptionalReader, audience
from api.deps import CalendarDep, ReadSessionDep
from api.explain import explain
from api.params import AsOf, SeriesQueryDep, instant
from api.routes.catalogue import definition_by_code, latest_value
from api.schemas import Explanation, LatestValue, Series, Vintage, Vintages
from core.errors import NotPublished
from publication.review import flag_list
from store import models

router = APIRouter(prefix="/v1/indices", tags=["indices"])

Day = Annotated[dt.date, Query(description="The value's date")]


@router.get(
    "/{code}/series",
    response_model=Series,
    responses=SERIES_FORMATS,
    summary="History of one index in JSON, CSV, Parquet or Arrow",
)
def series(code: str, query: SeriesQueryDep, session: ReadSessionDep, request: Request):
    definition = definition_by_code(session, code)
    return series_response(request, code, series_spec("index", definition.id, query), query)


@router.get("/{code}/latest", response_model=LatestValue, summary="The newest value")
def latest(code: str, session: ReadSessionDep, as_of: AsOf = None) -> LatestValue:
    definition = definition_by_code(session, code)
    answer = latest_value(session, definition, instant("as_of", as_of))
    if answer is None:
        raise NotPublished(f"index {code} has no published value", code=code)
    return answer


@router.get(
    "/{code}/vintages",
    response_model=Vintages,
    summary="Every vintage of one date: provisional, final and restated",
)
def vintages(code: str, date: Day, session: ReadSessionDep, as_of: AsOf = None) -> Vintages:
    definition = definition_by_code(session, code)
    as_of = instant("as_of", as_of)
    query = select(models.IndexValue).where(
        models.IndexValue.index_id == definition.id, models.IndexValue.date == date
    )
    if as_of is not None:
        query = query.where(models.IndexValue.published_at <= as_of)
    rows = session.scalars(query.order_by(models.IndexValue.vintage)).all()
    return Vintages(
        code=code,
        date=date,
        as_of=as_of,
        vintages=[
            Vintage(
                vintage=row.vintage,
                date=row.date,
                value=row.value,
                status=row.status,
                methodology_version=row.methodology_version,
                inputs_hash=row.inputs_hash,
                published_at=row.published_at,
                flags=flag_list(row.flags),
                # What was known at as_of: a later supersession had not happened yet.
                superseded_at=None
                if row.superseded_at is None or (as_of is not None and row.superseded_at > as_of)
                else row.superseded_at,
            )
            for row in rows
        ],
    )


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
