"""The annual rebalance: announce next year's composite weights, then apply them.

:func:`announce` computes the weights effective in ``year`` from the year of trades before
the announcement date (2/3 traded-value share, 1/3 production-value share, then the caps
and the floor) and stores them as an ``announced`` weight set. :func:`apply` makes an
announced set the composite's and the sectors' constituent weights from its effective
date; the normalising constants keep every index level continuous across the change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.catalogue import Catalogue, load_catalogue
from core.errors import InvalidInput, RebalanceError
from core.settings import get_settings
from index.computation import Computation
from index.normalising_constant import save_constants
from index.weights import capped_weights, target_weights
from publication.correction import Cause, record_corrections
from publication.fixing import ComputeReport, default_calendar, publish_index_values
from publication.ohlc import close_days
from store import models
from store.ledger import journal_computation
from store.models import FIXED, WeightSet, WeightSetMember


@dataclass
class RebalanceReport:
    effective_from: dt.date
    status: str
    weights: dict[str, float] = field(default_factory=dict)
    constants: dict[str, float] = field(default_factory=dict)
    restated_from: dt.date | None = None
    message: str = ""


def _traded_values(session: Session, begin: dt.datetime, end: dt.datetime) -> dict[int, float]:
    """Σ price × quantity of every active trade traded in ``[begin, end)``."""
    rows = session.execute(
        select(models.Trade.commodity_id, func.sum(models.Trade.price * models.Trade.quantity))
        .where(
            models.Trade.status == "active",
            models.Trade.traded_at >= begin,
            models.Trade.traded_at < end,
        )
        .group_by(models.Trade.commodity_id)
    ).all()
    return {commodity_id: float(value or 0.0) for commodity_id, value in rows}


def announce(
    session: Session,
    year: int,
    now: dt.datetime,
    *,
    calendar: Calendar | None = None,
    catalogue: Catalogue | None = None,
) -> RebalanceReport:
    """Compute and store (status ``announced``) the composite weights effective in ``year``.

    Traded value is taken over the year before the announcement date (the methodology's
    month-day in ``year - 1``), converted to CNY at the methodology's rates; production
    value comes from the methodology. Announcing again before the effective date replaces
    the announced set; once it is effective it cannot change.
    """
    calendar = calendar or default_calendar()
    methodology = calendar.methodology
    rules = methodology.rebalance
    catalogue = catalogue or load_catalogue(get_settings().catalogue_path)
    effective = rules.effective_date(year)
    begin, end = calendar.data_year(year)
    if now.tzinfo is None:
        raise InvalidInput("now", "must be timezone-aware")
    today = calendar.local_date(now)
    if today >= effective:
        raise RebalanceError(
            f"weights effective {effective} can no longer be announced on {today}; "
            "announce the next year's instead",
            year=year,
        )
    existing = session.scalar(select(WeightSet).where(WeightSet.effective_from == effective))
    if existing is not None and existing.status != "announced":
        raise RebalanceError(
            f"the weight set effective {effective} is already {existing.status}", year=year
        )

    commodities = session.scalars(select(models.Commodity).order_by(models.Commodity.id)).all()
    listed = {c.code for c in catalogue.commodities}
    parameters = methodology.commodities
    missing = [
        c.code
        for c in commodities
        if c.code not in listed or not getattr(parameters.get(c.code), "production_value", 0)
    ]
    if missing:
        raise InvalidInput(
            "production_value",
            f"methodology {methodology.version} gives none for {sorted(missing)}",
        )
    unpriced = sorted({c.currency for c in commodities} - set(rules.fx_to_cny))
    if unpriced:
        raise InvalidInput("fx_to_cny", f"the methodology has no rate for {unpriced}")
    traded = _traded_values(session, begin, end)
    traded_cny = np.array(
        [traded.get(c.id, 0.0) * rules.fx_to_cny[c.currency] for c in commodities]
    )
    production = np.array([parameters[c.code].production_value for c in commodities])
    traded_shares, production_shares, targets = target_weights(
        traded_cny, production, rules.traded_share
    )
    weights = capped_weights(
        targets,
        [c.sector for c in commodities],
        commodity_cap=rules.commodity_cap,
        sector_cap=rules.sector_cap,
        floor=rules.floor,
    )

    if existing is not None:
        for member in session.scalars(
            select(WeightSetMember).where(WeightSetMember.weight_set_id == existing.id)
        ):
            session.delete(member)
        session.delete(existing)
        session.flush()
    weight_set = WeightSet(
        effective_from=effective,
        status="announced",
        methodology_version=methodology.version,
        data_from=calendar.local_date(begin),
        data_to=calendar.local_date(end) - dt.timedelta(days=1),
        parameters={
            "traded_value_share": rules.traded_value_share,
            "production_value_share": rules.production_value_share,
            "commodity_cap": rules.commodity_cap,
            "sector_cap": rules.sector_cap,
            "floor": rules.floor,
            "fx_to_cny": dict(rules.fx_to_cny),
        },
        announced_at=now,
    )
    session.add(weight_set)
    session.flush()
    for i, commodity in enumerate(commodities):
        session.add(
            WeightSetMember(
                weight_set_id=weight_set.id,
                commodity_id=commodity.id,
                traded_value=float(traded_cny[i]),
                production_value=float(production[i]),
                traded_share=float(traded_shares[i]),
                production_share=float(production_shares[i]),
                target=float(targets[i]),
                weight=float(weights[i]),
            )
        )
    session.flush()
    return RebalanceReport(
        effective_from=effective,
        status="announced",
        weights={c.code: float(weights[i]) for i, c in enumerate(commodities)},
        message=f"weights effective {effective} announced from trades {weight_set.data_from}.."
        f"{weight_set.data_to}",
    )


def apply(
    session: Session,
    effective_date: dt.date,
    now: dt.datetime,
    *,
    calendar: Calendar | None = None,
) -> RebalanceReport:
    """Make the announced weight set effective on or before ``effective_date`` the weights
    of the composite and of every sector index (each sector reweights its members to sum
    to 1). Index values already published from its effective date on are recomputed.
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
        total = sum(weights[c] for c in members)
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

    report = RebalanceReport(
        effective_from=effective,
        status="effective",
        weights={codes[c]: w for c, w in weights.items()},
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
    on, with a correction notice for each fixed value that changes."""
    journal_computation(session, "reweight", effective, effective, now, calendar)
    rows = publish_index_values(
        session,
        Computation.load(session, calendar),
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
