"""Index catalogue and history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.deps import SessionDep
from api.schemas import IndexInfo, Series, SeriesPoint
from bcpi.errors import InvalidRange, UnknownIndex
from store import models

router = APIRouter(prefix="/v1/indices", tags=["indices"])

KIND_ORDER = {"composite": 0, "sector": 1, "commodity": 2}


@router.get("", response_model=list[IndexInfo], summary="Every published index")
def list_indices(session: SessionDep) -> list[IndexInfo]:
    rows = session.scalars(select(models.IndexDefinition).order_by(models.IndexDefinition.id))
    infos = [IndexInfo.model_validate(row, from_attributes=True) for row in rows]
    return sorted(infos, key=lambda i: KIND_ORDER[i.kind])


@router.get("/{code}/series", response_model=Series, summary="Daily history of one index")
def series(
    code: str,
    session: SessionDep,
    start: Annotated[dt.date | None, Query(description="First date, inclusive")] = None,
    end: Annotated[dt.date | None, Query(description="Last date, inclusive")] = None,
) -> Series:
    if start and end and end < start:
        raise InvalidRange(f"end {end} is before start {start}")
    definition = session.scalar(
        select(models.IndexDefinition).where(models.IndexDefinition.code == code)
    )
    if definition is None:
        raise UnknownIndex(code)
    query = select(models.IndexValue.date, models.IndexValue.value, models.IndexValue.status).where(
        models.IndexValue.index_id == definition.id, models.IndexValue.superseded_at.is_(None)
    )
    if start:
        query = query.where(models.IndexValue.date >= start)
    if end:
        query = query.where(models.IndexValue.date <= end)
    points = [
        SeriesPoint(date=d, value=v, status=s)
        for d, v, s in session.execute(query.order_by(models.IndexValue.date))
    ]
    return Series(code=code, points=points)
