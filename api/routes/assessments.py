"""Per-commodity price assessments: the daily values every index is built from."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.answers import SERIES_FORMATS, answer, metadata_answer
from api.params import SeriesQueryDep
from api.schemas import AssessmentSeries, SeriesMetadata

router = APIRouter(prefix="/v1/assessments", tags=["assessments"])


@router.get(
    "/{commodity}/series",
    response_model=AssessmentSeries,
    responses=SERIES_FORMATS,
    summary="A commodity's assessments: price, trades, volume, high, low, fallback",
)
def series(commodity: str, query: SeriesQueryDep, request: Request):
    return answer(request, "assessment", query, code=commodity)


@router.get(
    "/{commodity}/metadata",
    response_model=SeriesMetadata,
    summary="What describes a commodity's assessment series (the CSV answer links here)",
    responses={406: {"description": "A format other than JSON was asked for"}},
)
def metadata(commodity: str, query: SeriesQueryDep, request: Request):
    """Takes the series' own query (`format`, `order`, `limit` and `rebase_to` change
    nothing here)."""
    return metadata_answer(request, "assessment", commodity, query)
