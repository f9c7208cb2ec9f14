"""The rules and the record: ``GET /v1/methodology`` (every version and every proposed
one, public) and ``GET /v1/audit/operator-log`` (administrators and auditors)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from api.auth import OverseerPrincipal
from api.deps import CalendarDep, ReadSessionDep
from api.schemas import MethodologyOut, MethodologyProposalOut, MethodologyVersionOut
from core.errors import MethodologyError, UnknownMethodologyVersion
from core.methodology import parse_methodology
from publication.proposal import CONSULTATION, consultations
from store import models

router = APIRouter(prefix="/v1", tags=["governance"])
LOG_PAGE = 1000


@functools.lru_cache(maxsize=64)
def _changelog(document: str) -> list[str]:
    try:
        return list(parse_methodology(document).changelog)
    except MethodologyError:
        return []


def _proposal(p: models.Proposal, today: dt.date) -> MethodologyProposalOut:
    payload, result = p.payload, p.result or {}
    closes = dt.date.fromisoformat(payload["closes"])
    return MethodologyProposalOut(
        id=p.id,
        version=payload["version"],
        effective_from=payload["effective_from"],
        sha256=payload["sha256"],
        status=p.status,
        open=p.status == CONSULTATION and today < closes,
        opens=payload["opens"],
        closes=closes,
        decided_at=p.decided_at,
        decision_reason=result.get("reason"),
        changelog=payload["changelog"],
        backtest=payload.get("backtest"),
    )


@router.get("/methodology", response_model=MethodologyOut, summary="Methodology versions")
def methodology(session: ReadSessionDep, calendar: CalendarDep) -> MethodologyOut:
    """Every version this deployment knows, oldest first, with its effective date, its
    changelog and the SHA-256 of its document; then every version proposed for
    consultation, with its dates, its status and its backtest over the stored history."""
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
                changelog=_changelog(r.document),
            )
            for r in rows
        ],
        proposals=[_proposal(p, today) for p in consultations(session)],
    )


@router.get(
    "/methodology/{version}",
    response_class=PlainTextResponse,
    summary="One methodology version's document as published",
    responses={200: {"content": {"text/plain": {}}}},
)
def methodology_document(version: str, session: ReadSessionDep) -> PlainTextResponse:
    """The document of a version, or of one proposed for consultation."""
    row = session.get(models.MethodologyVersion, version)
    if row is not None:
        return PlainTextResponse(row.document, headers={"X-Content-SHA256": row.sha256})
    proposed = [p for p in consultations(session) if p.payload["version"] == version]
    if not proposed:
        known = session.scalars(select(models.MethodologyVersion.version)).all()
        known += [p.payload["version"] for p in consultations(session)]
        raise UnknownMethodologyVersion(
            f"no methodology version {version!r}; known: {', '.join(sorted(set(known)))}",
            version=version,
        )
    payload = proposed[-1].payload
    return PlainTextResponse(payload["document"], headers={"X-Content-SHA256": payload["sha256"]})


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
