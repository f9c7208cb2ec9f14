"""Announcing next year's composite weights: computed from a year of trades and the
methodology's production values, bounded by the caps and the floor, new commodities phased
in, and stored as an ``announced`` weight set with everything they were computed from.

The announcement runs under its calendar's methodology: its rebalance rules say which
trades make the traded value and where the data year is cut; whether a trade qualified is
judged under the version in force on its window's day. An announcement stands: announcing
the same effective date again is refused unless the operator replaces it with a reason,
which publishes a notice on the composite for each weight that changes (reason
``rebalance``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.catalogue import Catalogue, load_catalogue
from core.errors import InvalidInput, RebalanceError
from core.methodology import segments
from core.settings import get_settings
from index.computation import Computation
from index.traded_value import traded_values
from index.weights import capped_weights, phased_weights, target_weights
from publication.correction import CAUSE_LIMIT, CorrectionNotice
from publication.fixing import default_calendar
from publication.vintage import bump_publication_version
from store import models
from store.models import Correction, WeightSet, WeightSetMember


@dataclass
class RebalanceReport:
    effective_from: dt.date
    status: str
    weights: dict[str, float] = field(default_factory=dict)
    constants: dict[str, float] = field(default_factory=dict)
    restated_from: dt.date | None = None
    message: str = ""
    caps: dict[str, float] = field(default_factory=dict)
    phase_in: dict[str, str] = field(default_factory=dict)
    """Commodities phased in, with their step (``1/2``: the first of two rebalances)."""
    notices: list[CorrectionNotice] = field(default_factory=list)


def _existing(
    session: Session, effective: dt.date, year: int, replace: bool, reason: str | None
) -> WeightSet | None:
    """The announcement ``announce`` may replace; refuses what it may not do."""
    if replace and not (reason and reason.strip()):
        raise InvalidInput(
            "reason",
            "replacing announced weights needs a reason (--replace --reason TEXT); "
            "it is published on the notice",
        )
    if reason is not None and not replace:
        raise InvalidInput("reason", "a reason goes with --replace only")
    existing = session.scalar(select(WeightSet).where(WeightSet.effective_from == effective))
    if existing is not None and existing.status != "announced":
        raise RebalanceError(
            f"the weight set effective {effective} is already {existing.status}; "
            "it can no longer change",
            year=year,
        )
    if existing is not None and not replace:
        raise RebalanceError(
            f"the weights effective {effective} were already announced at "
            f"{existing.announced_at:%Y-%m-%d %H:%M} UTC (weight set {existing.id}, "
            f"methodology {existing.methodology_version}, trades {existing.data_from}.."
            f"{existing.data_to}); to replace them run `bcpi rebalance announce --year {year} "
            "--replace --reason TEXT`",
            year=year,
            weight_set=existing.id,
        )
    if existing is None and replace:
        raise InvalidInput(
            "replace",
            f"no weights effective {effective} are announced, so there is nothing to "
            "replace: announce them without --replace",
        )
    return existing


def _composite(session: Session) -> models.IndexDefinition | None:
    return session.scalar(
        select(models.IndexDefinition)
        .where(models.IndexDefinition.kind == "composite")
        .order_by(models.IndexDefinition.id)
        .limit(1)
    )


def _phase_in_steps(
    session: Session, effective: dt.date, commodities: list[models.Commodity], rebalances: int
) -> list[int]:
    """Each commodity's phase-in step at the rebalance effective on ``effective``: 1 for one
    without weight in the composite the day before, the previous set's step + 1 for one
    being phased in, 0 for the rest (and for all when nothing is phased in)."""
    composite = _composite(session)
    if rebalances <= 1 or composite is None:
        return [0] * len(commodities)
    C = models.IndexConstituent
    previous_from = session.scalar(
        select(func.max(C.effective_from)).where(
            C.index_id == composite.id, C.effective_from < effective
        )
    )
    if previous_from is None:
        return [0] * len(commodities)
    weighted = set(
        session.scalars(
            select(C.commodity_id).where(
                C.index_id == composite.id, C.effective_from == previous_from, C.weight > 0
            )
        )
    )
    previous = session.scalar(
        select(WeightSet)
        .where(WeightSet.effective_from < effective)
        .order_by(WeightSet.effective_from.desc())
        .limit(1)
    )
    phasing = ((previous.parameters or {}).get("phase_in") or {}) if previous else {}
    steps = phasing.get("steps", {})
    return [
        1 if c.id not in weighted else int(steps[c.code]) + 1 if c.code in steps else 0
        for c in commodities
    ]


def announce(
    session: Session,
    year: int,
    now: dt.datetime,
    *,
    calendar: Calendar | None = None,
    catalogue: Catalogue | None = None,
    replace: bool = False,
    reason: str | None = None,
) -> RebalanceReport:
    """Compute and store (status ``announced``) the composite weights effective in ``year``.

    Traded value is taken over the data year before the announcement date, from every
    active trade or from the qualifying ones (``rebalance.traded_value``), converted to CNY
    at the methodology's rates; production value comes from the methodology. An announced
    set is replaced only with ``replace`` and a ``reason``; once effective it cannot change.
    """
    if now.tzinfo is None:
        raise InvalidInput("now", "must be timezone-aware")
    calendar = calendar or default_calendar()
    catalogue = catalogue or load_catalogue(get_settings().catalogue_path)
    methodology = calendar.methodology
    computation = Computation.load(session, calendar, segments(methodology))
    rules = methodology.rebalance
    effective = rules.effective_date(year)
    today = calendar.local_date(now)
    if today >= effective:
        raise RebalanceError(
            f"weights effective {effective} can no longer be announced on {today}; "
            "announce the next year's instead",
            year=year,
        )
    existing = _existing(session, effective, year, replace, reason)

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
    data_year, traded = traded_values(session, computation, year)
    traded_cny = np.array(
        [traded.get(c.id, 0.0) * rules.fx_to_cny[c.currency] for c in commodities]
    )
    production = np.array([parameters[c.code].production_value for c in commodities])
    traded_shares, production_shares, targets = target_weights(
        traded_cny, production, rules.traded_share
    )
    bounds = {
        "commodity_cap": rules.commodity_cap,
        "sector_cap": rules.sector_cap,
        "floor": rules.floor,
    }
    sectors = [c.sector for c in commodities]
    computed = capped_weights(targets, sectors, **bounds)
    steps = _phase_in_steps(session, effective, commodities, rules.phase_in_rebalances)
    weights = phased_weights(computed, sectors, steps, rules.phase_in_rebalances, **bounds)
    phasing = {
        c.code: steps[i]
        for i, c in enumerate(commodities)
        if 0 < steps[i] < rules.phase_in_rebalances
    }

    recorded = {
        "traded_value_share": rules.traded_value_share,
        "production_value_share": rules.production_value_share,
        **bounds,
        "fx_to_cny": dict(rules.fx_to_cny),
        "traded_value": rules.traded_value,
        "data_year_cut": rules.data_year_cut,
        "data_year": [data_year.begin.isoformat(), data_year.end.isoformat()],
        "phase_in_rebalances": rules.phase_in_rebalances,
        "announcement": 1,
    }
    if phasing:
        recorded["phase_in"] = {
            "steps": phasing,
            "computed": {
                c.code: float(computed[i]) for i, c in enumerate(commodities) if c.code in phasing
            },
        }
    replaced: dict[int, float] = {}
    if existing is not None:
        replaced = _remove(session, existing)
        recorded["announcement"] = (existing.parameters or {}).get("announcement", 1) + 1
        recorded["replaces"] = {
            "announced_at": existing.announced_at.isoformat(),
            "methodology_version": existing.methodology_version,
            "weights": {c.code: replaced.get(c.id, 0.0) for c in commodities},
            "reason": reason.strip() if reason else None,
        }
    weight_set = WeightSet(
        effective_from=effective,
        status="announced",
        methodology_version=methodology.version,
        data_from=data_year.first_day,
        data_to=data_year.last_day,
        parameters=recorded,
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
    bump_publication_version(session, now)
    report = RebalanceReport(
        effective_from=effective,
        status="announced",
        weights={c.code: float(weights[i]) for i, c in enumerate(commodities)},
        caps=dict(bounds),
        phase_in={code: f"{k}/{rules.phase_in_rebalances}" for code, k in phasing.items()},
        message=f"weights effective {effective} announced (methodology {methodology.version}) "
        f"from the trades of {weight_set.data_from}..{weight_set.data_to}",
    )
    if existing is not None:
        report.notices = _replacement_notices(
            session, weight_set, replaced, commodities, weights, reason or "", now
        )
        report.message += f"; it replaces the announcement of {existing.announced_at:%Y-%m-%d}"
    return report


def _remove(session: Session, existing: WeightSet) -> dict[int, float]:
    """Delete an announced set; its weights by commodity id."""
    weights = dict(
        session.execute(
            select(WeightSetMember.commodity_id, WeightSetMember.weight).where(
                WeightSetMember.weight_set_id == existing.id
            )
        ).all()
    )
    session.execute(delete(WeightSetMember).where(WeightSetMember.weight_set_id == existing.id))
    session.execute(delete(WeightSet).where(WeightSet.id == existing.id))
    session.expunge(existing)
    return weights


def _replacement_notices(
    session: Session,
    weight_set: WeightSet,
    old: dict[int, float],
    commodities: list[models.Commodity],
    weights: np.ndarray,
    reason: str,
    now: dt.datetime,
) -> list[CorrectionNotice]:
    """A notice on the composite, dated the effective date, for each announced weight the
    replacement changes: old and new weight, the announcements as vintages."""
    composite = _composite(session)
    if composite is None:
        return []
    number = weight_set.parameters["announcement"]
    notices = []
    for i, commodity in enumerate(commodities):
        before, after = old.get(commodity.id, 0.0), float(weights[i])
        if before == after:
            continue
        cause = (
            f"weights effective {weight_set.effective_from} announced again: "
            f"{commodity.code}'s weight; {reason.strip()}"
        )
        if len(cause) > CAUSE_LIMIT:
            cause = cause[: CAUSE_LIMIT - 1] + "…"
        row = Correction(
            index_id=composite.id,
            date=weight_set.effective_from,
            old_vintage=number - 1,
            new_vintage=number,
            old_value=before,
            new_value=after,
            reason="rebalance",
            cause=cause,
            forced=False,
            published_at=now,
        )
        session.add(row)
        notices.append(
            CorrectionNotice(
                composite.code,
                row.date,
                before,
                after,
                number - 1,
                number,
                "rebalance",
                cause,
                False,
                now,
            )
        )
    session.flush()
    return notices


def announce_once(
    session: Session, year: int, now: dt.datetime, *, calendar: Calendar | None = None
) -> RebalanceReport:
    """The scheduled announcement: :func:`announce` unless the weights effective in
    ``year`` were already announced (by hand, or by an earlier run), which stand."""
    calendar = calendar or default_calendar()
    effective = calendar.methodology.rebalance.effective_date(year)
    existing = session.scalar(select(WeightSet).where(WeightSet.effective_from == effective))
    if existing is not None:
        return RebalanceReport(
            effective_from=effective,
            status=existing.status,
            message=f"weights effective {effective} already {existing.status} "
            f"(weight set {existing.id}); left as they are",
        )
    return announce(session, year, now, calendar=calendar)
