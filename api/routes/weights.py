"""The weights of an index in force on a date: a rebalance's weight set, announced or
applied, with the caps and the data year it was computed from; or the methodology's own
weights where no rebalance has changed them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.deps import ReadSessionDep
from api.routes.catalogue import definition_by_code
from api.schemas import WeightCaps, WeightMember, WeightReplacement, WeightSetAnswer
from core.errors import NotPublished
from store import models
from store.models import WeightSet, WeightSetMember

router = APIRouter(prefix="/v1/indices", tags=["indices"])

Effective = Annotated[
    dt.date,
    Query(
        description="The date the weights are in force on (YYYY-MM-DD): announced weights "
        "answer for dates from their effective date on, before they are applied"
    ),
]
REWEIGHTED = ("composite", "sector")


@router.get(
    "/{code}/weights",
    response_model=WeightSetAnswer,
    summary="The weights in force on a date: announced or applied by the rebalance, or the "
    "methodology's, with the caps and the data year",
)
def weights(code: str, effective: Effective, session: ReadSessionDep) -> WeightSetAnswer:
    definition = definition_by_code(session, code)
    C = models.IndexConstituent
    constituents_from = session.scalar(
        select(func.max(C.effective_from)).where(
            C.index_id == definition.id, C.effective_from <= effective
        )
    )
    weight_set = None
    if definition.kind in REWEIGHTED:
        weight_set = session.scalar(
            select(WeightSet)
            .where(WeightSet.effective_from <= effective)
            .order_by(WeightSet.effective_from.desc())
            .limit(1)
        )
    if weight_set is not None and (
        constituents_from is None or weight_set.effective_from >= constituents_from
    ):
        return _weight_set(session, definition, effective, weight_set)
    if constituents_from is None:
        first = session.scalar(
            select(func.min(C.effective_from)).where(C.index_id == definition.id)
        )
        since = f": its first take effect on {first}" if first else ""
        raise NotPublished(
            f"index {code} has no weights in force on {effective}{since}",
            code=code,
            effective=effective.isoformat(),
        )
    rows = session.execute(
        select(C.weight, models.Commodity.code, models.Commodity.sector)
        .join(models.Commodity, models.Commodity.id == C.commodity_id)
        .where(C.index_id == definition.id, C.effective_from == constituents_from)
        .order_by(C.weight.desc(), models.Commodity.code)
    ).all()
    return WeightSetAnswer(
        code=code,
        effective=effective,
        effective_from=constituents_from,
        status="methodology",
        members=[WeightMember(code=c, sector=s, weight=w) for w, c, s in rows],
    )


def _weight_set(
    session: Session, definition: models.IndexDefinition, effective: dt.date, weight_set
) -> WeightSetAnswer:
    rows = session.execute(
        select(WeightSetMember, models.Commodity)
        .join(models.Commodity, models.Commodity.id == WeightSetMember.commodity_id)
        .where(WeightSetMember.weight_set_id == weight_set.id)
    ).all()
    if definition.kind == "sector":
        sectors = set(
            session.scalars(
                select(models.Commodity.sector)
                .join(
                    models.IndexConstituent,
                    models.IndexConstituent.commodity_id == models.Commodity.id,
                )
                .where(models.IndexConstituent.index_id == definition.id)
            )
        )
        rows = [(m, c) for m, c in rows if c.sector in sectors]
    total = sum(m.weight for m, _ in rows) if definition.kind == "sector" else 1.0
    parameters = weight_set.parameters or {}
    phase_in = parameters.get("phase_in") or {}
    steps, computed = phase_in.get("steps", {}), phase_in.get("computed", {})
    rebalances = parameters.get("phase_in_rebalances", 0)
    caps = {k: parameters[k] for k in WeightCaps.model_fields if k in parameters}
    replaces = parameters.get("replaces")
    members = [
        WeightMember(
            code=c.code,
            sector=c.sector,
            weight=m.weight / total,
            composite_weight=m.weight,
            traded_value=m.traded_value,
            production_value=m.production_value,
            target=m.target,
            computed_weight=computed.get(c.code, m.weight),
            phase_in=f"{steps[c.code]}/{rebalances}" if c.code in steps else None,
        )
        for m, c in sorted(rows, key=lambda row: (-row[0].weight, row[1].code))
    ]
    return WeightSetAnswer(
        code=definition.code,
        effective=effective,
        effective_from=weight_set.effective_from,
        status=weight_set.status,
        weight_set=weight_set.id,
        announcement=parameters.get("announcement", 1),
        methodology_version=weight_set.methodology_version,
        announced_at=weight_set.announced_at,
        applied_at=weight_set.applied_at,
        data_from=weight_set.data_from,
        data_to=weight_set.data_to,
        traded_value=parameters.get("traded_value", "all_trades"),
        data_year_cut=parameters.get("data_year_cut", "midnight"),
        phase_in_rebalances=rebalances,
        caps=WeightCaps(**caps) if len(caps) == len(WeightCaps.model_fields) else None,
        replaces=WeightReplacement(**replaces) if replaces else None,
        members=members,
    )
