"""Per-commodity price assessments: the daily values every index is built from."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from api.answers import SERIES_FORMATS, series_response, series_spec
from api.deps import ReadSessionDep
from api.params import SeriesQueryDep
from api.schemas import AssessmentSeries
from core.errors import UnknownCommodity
from store import models

router = APIRouter(prefix="/v1/assessments", tags=["assessments"])


@router.get(
    "/{commodity}/series",
    response_model=AssessmentSeries,
    responses=SERIES_FORMATS,
    summary="A commodity's assessments: price, trades, volume, high, low, fallback",
)
def series(commodity: str, query: SeriesQueryDep, session: ReadSessionDep, request: Request):
    commodity_id = session.scalar(
        select(models.Commodity.id).where(models.Commodity.code == commodity)
    )
    if commodity_id is None:
        raise UnknownCommodity(commodity)
    spec = series_spec("assessment", commodity_id, query)
    return series_response(request, commodity, spec, query)
