"""The annual rebalance: announce next year's composite weights, then apply them.

:func:`~publication.announcement.announce` computes the weights effective in ``year`` from
the data year before the announcement date (2/3 traded-value share, 1/3 production-value
share, then the caps and the floor, new commodities phased in) and stores them as an
``announced`` weight set. :func:`apply` makes an announced set, exactly as announced, the
composite's constituent weights (and, rescaled to sum to 1, each sector's) from its
effective date; the normalising constants keep every index level continuous across the
change.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.methodology import segments
from index.computation import Computation
from index.normalising_constant import save_constants
from publication.announcement import RebalanceReport, announce, announce_once
from publication.correction import Cause, record_corrections
from publication.fixing import ComputeReport, default_calendar, publish_index_values
from publication.ohlc import close_days
from publication.vintage import bump_publication_version
from store import models
from store.ledger import journal_computation
from store.models import FIXED, WeightSet, WeightSetMember

__all__ = ["RebalanceReport", "announce", "announce_once", "apply", "republish"]

CAPS = ("commodity_cap", "sector_cap", "floor")


def apply(
    session: Session,
    effective_date: dt.date,
    now: dt.datetime,
    *,
    calendar: Calendar | None = None,
) -> RebalanceReport:
    """Make the announced weight set effective on or before ``effective_date`` the weights
    of the composite, exactly as announced, and of every sector index (each sector
    reweights its members to sum to 1). Index values already published from its effective
    date on are recomputed.
    """
    weight_set = session.scalar(
        select(WeightSet)
        .where(WeightSet.status == "announced", WeightSet.effective_from <= effective_date)
        .order_by(WeightSet.effective_from.desc())
        .limit(1)
    )
    if weight_set is None:
        return RebalanceReport(
            effective_from=effective_date, status="none", message="no announced weights due"
        )
    weights = dict(
        session.execute(
            select(WeightSetMember.commodity_id, WeightSetMember.weight).where(
                WeightSetMember.weight_set_id == weight_set.id
            )
        ).all()
    )
    codes = dict(session.execute(select(models.Commodity.id, models.Commodity.code)).all())
    sector_of = dict(session.execute(select(models.Commodity.id, models.Commodity.sector)).all())
    effective = weight_set.effective_from
    for definition in session.scalars(
        select(models.IndexDefinition).where(
            models.IndexDefinition.kind.in_(("composite", "sector"))
        )
    ):
        members = _members(session, definition, weights, sector_of)
        total = 1.0 if definition.kind == "composite" else sum(weights[c] for c in members)
        existing = {
            c.commodity_id: c
            for c in session.scalars(
                select(models.IndexConstituent).where(
                    models.IndexConstituent.index_id == definition.id,
                    models.IndexConstituent.effective_from == effective,
                )
            )
        }
        for commodity_id in members:
            row = existing.get(commodity_id) or models.IndexConstituent(
                index_id=definition.id, commodity_id=commodity_id, effective_from=effective
            )
            row.weight = weights[commodity_id] / total
            session.add(row)
    weight_set.status = "effective"
    weight_set.applied_at = now
    session.flush()
    bump_publication_version(session, now)

    parameters = weight_set.parameters or {}
    report = RebalanceReport(
        effective_from=effective,
        status="effective",
        weights={codes[c]: w for c, w in weights.items()},
        caps={
            k: parameters[k] for k in ("commodity_cap", "sector_cap", "floor") if k in parameters
        },
    )
    calendar = calendar or default_calendar()
    report.constants = _record_constants(session, effective, calendar.methodology.version, now)
    published_after = session.scalar(
        select(func.min(models.IndexValue.date)).where(
            models.IndexValue.date >= effective, models.IndexValue.superseded_at.is_(None)
        )
    )
    if published_after is not None:
        republish(session, effective, now, calendar)
        report.restated_from = published_after
    report.message = f"weights effective {effective} applied"
    return report


def republish(session: Session, effective: dt.date, now: dt.datetime, calendar: Calendar) -> None:
    """Recompute every index under its new weights and publish its values from ``effective``
    on, each under the version in force on its day, with a correction notice for each fixed
    value that changes."""
    journal_computation(session, "reweight", effective, effective, now, calendar)
    rows = publish_index_values(
        session,
        Computation.load(session, calendar, segments(calendar.methodology)),
        effective,
        now,
        ComputeReport(start=effective, end=effective),
    )
    record_corrections(
        session, now, Cause(reason="rebalance", detail=f"weights effective {effective}")
    )
    close_days(session, rows, now)


def _members(session, definition, weights, sector_of) -> list[int]:
    if definition.kind == "composite":
        return sorted(weights)
    current = session.scalars(
        select(models.IndexConstituent.commodity_id).where(
            models.IndexConstituent.index_id == definition.id
        )
    ).all()
    sectors = {sector_of[c] for c in current}
    return sorted(c for c in weights if sector_of[c] in sectors)


def _record_constants(
    session: Session, effective: dt.date, methodology_version: str, now: dt.datetime
) -> dict[str, float]:
    """The normalising constant of each composite and sector index from ``effective`` on:
    its value on the last index day before ``effective``."""
    rows, out = [], {}
    for definition in session.scalars(
        select(models.IndexDefinition).where(
            models.IndexDefinition.kind.in_(("composite", "sector"))
        )
    ):
        last = session.execute(
            select(models.IndexValue.date, models.IndexValue.value)
            .where(
                models.IndexValue.index_id == definition.id,
                models.IndexValue.date < effective,
                models.IndexValue.superseded_at.is_(None),
                models.IndexValue.status.in_(FIXED),
            )
            .order_by(models.IndexValue.date.desc())
            .limit(1)
        ).first()
        if last is None:
            continue
        rows.append(
            {
                "index_id": definition.id,
                "effective_from": effective,
                "reference_date": last.date,
                "value": last.value,
                "methodology_version": methodology_version,
            }
        )
        out[definition.code] = last.value
    save_constants(session, rows, now)
    return out
