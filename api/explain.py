"""Why an index value is what it is, from what was known when it was published.

The value's stored rationale gives the formula, the reference (link) value and each
constituent's weight and levels; each constituent's assessments (on the date, on the
reference date and on the base date) are the vintages that were current at the value's
publication instant, so ``level = price / base price × base value`` and
``value = reference value × Σ weight × level / reference level`` can be checked from the
answer alone.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.schemas import ExplainedAssessment, ExplainedConstituent, Explanation, PriceAt
from api.stored_values import known_at
from core.calendar import Calendar
from core.errors import NotPublished
from publication.disclosure import PUBLIC, Audience, discloses, shown
from publication.review import flag_list
from store import models


def _assessment_on_or_before(
    session: Session, commodity_id: int, day: dt.date, instant: dt.datetime
) -> models.Assessment | None:
    """The last priced assessment by ``day`` (a suspended one has no price to carry)."""
    return session.scalars(
        select(models.Assessment)
        .where(
            models.Assessment.commodity_id == commodity_id,
            models.Assessment.date <= day,
            models.Assessment.price.is_not(None),
            known_at(models.Assessment, instant),
        )
        .order_by(models.Assessment.date.desc())
        .limit(1)
    ).first()


def _in_window(session: Session, assessment: models.Assessment, calendar: Calendar) -> tuple:
    """The conditions that select the trades of the assessment's window."""
    code = session.get(models.Commodity, assessment.commodity_id).code
    begin, stop = calendar.window(assessment.date, code)
    return (
        models.Trade.commodity_id == assessment.commodity_id,
        models.Trade.traded_at > begin,
        models.Trade.traded_at <= stop,
    )


def _trades(
    session: Session, assessment: models.Assessment, calendar: Calendar
) -> tuple[list, list]:
    """The window's trades as they stand now: active ones used, the others excluded."""
    rows = session.execute(
        select(
            models.Trade.id,
            models.Exchange.code,
            models.Trade.trade_id,
            models.Trade.traded_at,
            models.Trade.price,
            models.Trade.quantity,
            models.Trade.status,
        )
        .join(models.Exchange, models.Exchange.id == models.Trade.exchange_id)
        .where(*_in_window(session, assessment, calendar))
        .order_by(models.Trade.traded_at, models.Trade.id)
    ).all()
    used, excluded = [], []
    for _, exchange, trade_id, traded_at, price, quantity, status in rows:
        trade = {
            "exchange": exchange,
            "trade_id": trade_id,
            "traded_at": traded_at.isoformat(),
            "price": price,
            "quantity": quantity,
        }
        if status == "active":
            used.append(trade)
        else:
            excluded.append({**trade, "reason": status})
    return used, excluded


def _arrived_later(
    session: Session, assessment: models.Assessment, calendar: Calendar
) -> dict | None:
    """Active trades of the window stored after this vintage was published: a value inside
    the correction window is restated for them; outside it, they change nothing."""
    count = session.scalar(
        select(func.count())
        .select_from(models.Trade)
        .join(models.IngestBatch, models.IngestBatch.id == models.Trade.batch_id)
        .where(
            *_in_window(session, assessment, calendar),
            models.Trade.status == "active",
            models.IngestBatch.received_at > assessment.published_at,
        )
    )
    if not count:
        return None
    window = calendar.methodology.publication.correction_window_days
    frozen = assessment.date < calendar.publication_days_before(calendar.today(), window)
    return {"trades": count, "after_correction_window": frozen}


def _explained_assessment(
    session: Session, assessment: models.Assessment, calendar: Calendar, audience: Audience
) -> ExplainedAssessment:
    rationale = dict(assessment.rationale or {})
    if "trades_used" in rationale or "excluded" in rationale:
        source = "rationale"
    else:
        rationale["trades_used"], rationale["excluded"] = _trades(session, assessment, calendar)
        source = "trades"
    if isinstance(rationale.get("trades_used"), int):  # a count only
        rationale["trades_used"] = []
    rules = calendar.methodology.publication
    limits = {"min_trades": rules.disclosure_min_trades}
    limits["min_exchanges"] = rules.disclosure_min_exchanges
    seen = shown(rationale, audience, **limits)
    if audience.everything:
        used, excluded = seen.get("trades_used") or [], seen.get("excluded") or []
    else:
        used, excluded = seen.pop("own_trades_used", []), seen.pop("own_trades_excluded", [])
    open_window = audience.everything or discloses(rationale, **limits)
    rest = {k: v for k, v in seen.items() if k not in ("trades_used", "excluded")}
    later = _arrived_later(session, assessment, calendar)
    if later is not None:
        rest["arrived_after_publication"] = later
    return ExplainedAssessment(
        date=assessment.date,
        price=assessment.price,
        status=assessment.status,
        vintage=assessment.vintage,
        trades=assessment.trades,
        volume=assessment.volume if open_window else None,
        high=assessment.high if open_window else None,
        low=assessment.low if open_window else None,
        exchanges=assessment.exchanges,
        fallback=assessment.fallback,
        methodology_version=assessment.methodology_version,
        inputs_hash=assessment.inputs_hash,
        published_at=assessment.published_at,
        flags=flag_list(assessment.flags),
        trades_used=list(used),
        excluded=list(excluded),
        source=source,
        rationale=rest or None,
    )


def explain(
    session: Session,
    definition: models.IndexDefinition,
    day: dt.date,
    as_of: dt.datetime | None,
    calendar: Calendar,
    audience: Audience = PUBLIC,
) -> Explanation:
    """Why the value of ``definition`` on ``day`` is what it is, as ``audience`` may see
    it (:mod:`publication.disclosure`)."""
    value = session.scalars(
        select(models.IndexValue).where(
            models.IndexValue.index_id == definition.id,
            models.IndexValue.date == day,
            known_at(models.IndexValue, as_of),
        )
    ).first()
    if value is None:
        when = f" as of {as_of.isoformat()}" if as_of else ""
        raise NotPublished(
            f"index {definition.code} has no value published for {day}{when}",
            code=definition.code,
            date=day,
        )
    rationale = value.rationale or {}
    instant = value.published_at
    reference_date = rationale.get("reference_date")
    reference_date = dt.date.fromisoformat(reference_date) if reference_date else None
    commodity_ids = dict(session.execute(select(models.Commodity.code, models.Commodity.id)).all())
    constituents = []
    for member in rationale.get("constituents", []):
        commodity_id = commodity_ids.get(member.get("code"))
        assessment = reference = base = None
        if commodity_id is not None:
            # The level rests on the assessment of ``level_date`` where the rationale says
            # so (a suspended constituent carries an earlier level).
            level_date = member.get("level_date")
            level_day = dt.date.fromisoformat(level_date) if level_date else day
            assessment = _assessment_on_or_before(session, commodity_id, level_day, instant)
            if reference_date is not None:
                reference = _assessment_on_or_before(session, commodity_id, reference_date, instant)
            first = definition.first_date
            if "base_date" in member:  # it joined later: its levels rest on its first price
                first = dt.date.fromisoformat(member["base_date"])
            base = _assessment_on_or_before(session, commodity_id, first, instant)
            if base is not None and base.date != first:
                base = None
        constituents.append(
            ExplainedConstituent(
                code=member["code"],
                weight=member["weight"],
                level=member["level"],
                reference_level=member["reference_level"],
                assessment=_explained_assessment(session, assessment, calendar, audience)
                if assessment
                else None,
                reference=PriceAt(date=reference.date, price=reference.price)
                if reference
                else None,
                base=PriceAt(date=base.date, price=base.price) if base else None,
            )
        )
    constant = rationale.get("normalising_constant")
    return Explanation(
        code=definition.code,
        kind=definition.kind,
        date=value.date,
        value=value.value,
        status=value.status,
        vintage=value.vintage,
        methodology_version=value.methodology_version,
        inputs_hash=value.inputs_hash,
        published_at=value.published_at,
        flags=flag_list(value.flags),
        formula=rationale.get("formula"),
        base_date=definition.first_date,
        base_value=definition.base_value,
        reference_date=reference_date,
        reference_value=rationale.get("reference_value"),
        normalising_constant=float(constant) if constant is not None else None,
        constituents=constituents,
        rationale=value.rationale,
    )
