"""The rules and the record: ``GET /v1/methodology`` (every version, public) and
``GET /v1/audit/operator-log`` (administrators and auditors)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from api.auth import OverseerPrincipal
from api.deps import CalendarDep, ReadSessionDep
from core.errors import UnknownMethodologyVersion
from store import models

router = APIRouter(prefix="/v1", tags=["governance"])
LOG_PAGE = 1000


class MethodologyVersionOut(BaseModel):
    version: str
    effective_from: dt.date
    sha256: str
    """SHA-256 of the document as published (``GET /v1/methodology/{version}``)."""
    source: str
    """``shipped`` with the software, or ``adopted`` by an operator."""
    state: str
    """``in_force`` as dated, or ``held``: shipped, but it would change published values, so
    it waits for an operator's adoption."""
    in_force_today: bool
    recorded_at: dt.datetime
    reason: str | None


class MethodologyOut(BaseModel):
    versions: list[MethodologyVersionOut]


@router.get("/methodology", response_model=MethodologyOut, summary="Methodology versions")
def methodology(session: ReadSessionDep, calendar: CalendarDep) -> MethodologyOut:
    """Every version this deployment knows, oldest first, with its effective date and the
    SHA-256 of its document."""
    rows = session.scalars(
        select(models.MethodologyVersion).order_by(
            models.MethodologyVersion.effective_from, models.MethodologyVersion.recorded_at
        )
    ).all()
    today = calendar.today()
    in_force = [r for r in rows if r.state == models.IN_FORCE and r.effective_from <= today]
    current = in_force[-1].version if in_force else None
    return MethodologyOut(
        versions=[
            MethodologyVersionOut(
                version=r.version,
                effective_from=r.effective_from,
                sha256=r.sha256,
                source=r.source,
                state=r.state,
                in_force_today=r.version == current,
                recorded_at=r.recorded_at,
                reason=r.reason,
            )
            for r in rows
        ]
    )


@router.get(
    "/methodology/{version}",
    response_class=PlainTextResponse,
    summary="One methodology version's document as published",
    responses={200: {"content": {"text/plain": {}}}},
)
def methodology_document(version: str, session: ReadSessionDep) -> PlainTextResponse:
    row = session.get(models.MethodologyVersion, version)
    if row is None:
        raise UnknownMethodologyVersion(f"no methodology version {version!r}", version=version)
    return PlainTextResponse(row.document, headers={"X-Content-SHA256": row.sha256})


class OperatorActOut(BaseModel):
    seq: int
    at: dt.datetime
    operator: str
    via: str
    action: str
    reason: str | None
    details: dict
    previous_hash: str
    entry_hash: str


class OperatorLogOut(BaseModel):
    acts: list[OperatorActOut]
    next_after: int | None
    """Pass as ``after`` for the next page (``None``: this was the last)."""


@router.get("/audit/operator-log", response_model=OperatorLogOut, summary="The operator log")
def operator_log(
    _overseer: OverseerPrincipal,
    session: ReadSessionDep,
    after: Annotated[int, Query(ge=0, description="Acts after this sequence number")] = 0,
) -> OperatorLogOut:
    """Every operator act, oldest first: who, when, through what, what, why and the
    resulting ids, each entry chained to the previous by its hash (``bcpi audit verify``
    recomputes the chain)."""
    acts = session.scalars(
        select(models.OperatorAct)
        .where(models.OperatorAct.seq > after)
        .order_by(models.OperatorAct.seq)
        .limit(LOG_PAGE + 1)
    ).all()
    more = len(acts) > LOG_PAGE
    acts = acts[:LOG_PAGE]
    return OperatorLogOut(
        acts=[
            OperatorActOut(
                seq=a.seq,
                at=a.at,
                operator=a.operator,
                via=a.via,
                action=a.action,
                reason=a.reason,
                details=a.details,
                previous_hash=a.previous_hash,
                entry_hash=a.entry_hash,
            )
            for a in acts
        ],
        next_after=acts[-1].seq if more else None,
    )
