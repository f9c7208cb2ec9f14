"""The catalogue: commodities and indices, with current constituents and weights."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from api.answers import metadata_answer
from api.deps import ReadSessionDep
from api.params import AsOf, SeriesQueryDep, instant
from api.published import latest_value
from api.schemas import (
    CommodityInfo,
    ConstantOut,
    Constituent,
    IndexDetail,
    IndexInfo,
    SeriesMetadata,
)
from api.stored_values import known_at
from core.errors import UnknownIndex
from core.methodology import in_force
from index.normalising_constant import constants_at
from store import models

router = APIRouter(prefix="/v1", tags=["catalogue"])

KIND_ORDER = {"composite": 0, "sector": 1, "commodity": 2}


def definition_by_code(session, code: str) -> models.IndexDefinition:
    definition = session.scalar(
        select(models.IndexDefinition).where(models.IndexDefinition.code == code)
    )
    if definition is None:
        raise UnknownIndex(code)
    return definition


@router.get("/commodities", response_model=list[CommodityInfo], summary="Every commodity")
def commodities(session: ReadSessionDep) -> list[CommodityInfo]:
    rows = session.scalars(select(models.Commodity).order_by(models.Commodity.code))
    return [CommodityInfo.model_validate(row, from_attributes=True) for row in rows]


@router.get("/indices", response_model=list[IndexInfo], summary="Every published index")
def list_indices(session: ReadSessionDep) -> list[IndexInfo]:
    rows = session.scalars(select(models.IndexDefinition).order_by(models.IndexDefinition.id))
    infos = [IndexInfo.model_validate(row, from_attributes=True) for row in rows]
    return sorted(infos, key=lambda i: KIND_ORDER[i.kind])


@router.get(
    "/indices/{code}",
    response_model=IndexDetail,
    summary="One index: current constituents and weights, methodology, latest value",
)
def index_detail(code: str, session: ReadSessionDep, as_of: AsOf = None) -> IndexDetail:
    definition = definition_by_code(session, code)
    as_of = instant("as_of", as_of)
    newest = (
        select(func.max(models.IndexConstituent.effective_from))
        .where(models.IndexConstituent.index_id == definition.id)
        .scalar_subquery()
    )
    members = session.execute(
        select(models.IndexConstituent, models.Commodity)
        .join(models.Commodity, models.Commodity.id == models.IndexConstituent.commodity_id)
        .where(
            models.IndexConstituent.index_id == definition.id,
            models.IndexConstituent.effective_from == newest,
        )
        .order_by(models.IndexConstituent.weight.desc(), models.Commodity.code)
    ).all()
    latest = latest_value(session, definition, as_of)
    rationale = None
    if latest is not None:
        rationale = session.scalar(
            select(models.IndexValue.rationale).where(
                models.IndexValue.index_id == definition.id,
                models.IndexValue.date == latest.date,
                known_at(models.IndexValue, as_of),
            )
        )
    constant = (rationale or {}).get("normalising_constant")
    return IndexDetail(
        **IndexInfo.model_validate(definition, from_attributes=True).model_dump(),
        methodology_version=latest.methodology_version if latest else in_force().version,
        normalising_constant=float(constant) if constant is not None else None,
        constants=[
            ConstantOut.model_validate(c, from_attributes=True)
            for c in constants_at(session, definition.id, as_of)
        ],
        constituents=[
            Constituent(
                code=commodity.code,
                name_en=commodity.name_en,
                name_zh=commodity.name_zh,
                weight=member.weight,
                effective_from=member.effective_from,
            )
            for member, commodity in members
        ],
        latest=latest,
    )


@router.get(
    "/indices/{code}/metadata",
    response_model=SeriesMetadata,
    summary="What describes an index series (the CSV answer links here)",
    responses={406: {"description": "A format other than JSON was asked for"}},
)
def index_metadata(code: str, query: SeriesQueryDep, request: Request):
    """Takes the series' own query (`format`, `order`, `limit` and `rebase_to` change
    nothing here)."""
    return metadata_answer(request, "index", code, query)
