"""What the index service reads from and writes to the store, beside the vintages."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from index.fallback import Anchor, FallbackState, Spread
from index.levels import IndexPlan, IndexResult
from index.methodology import Methodology
from index.rationale import WindowTrades
from store import models
from store.models_methodology import IndexDailyOHLC, IntradayIndexValue, NormalisingConstant

FIXED = ("final", "restated")


@dataclass(frozen=True)
class Reference:
    """Commodities (ordered by id: position = the kernel's commodity number), exchanges."""

    ids: list[int]
    codes: list[str]
    exchange_codes: dict[int, str]

    @classmethod
    def load(cls, session: Session) -> Reference:
        commodities = session.execute(
            select(models.Commodity.id, models.Commodity.code).order_by(models.Commodity.id)
        ).all()
        exchanges = dict(session.execute(select(models.Exchange.id, models.Exchange.code)).all())
        return cls([c for c, _ in commodities], [code for _, code in commodities], exchanges)

    def position(self, commodity_id: int) -> int:
        return self.ids.index(commodity_id)


@dataclass(frozen=True)
class Trades:
    commodity: np.ndarray
    time: np.ndarray
    price: np.ndarray
    quantity: np.ndarray
    exchange: np.ndarray
    ids: np.ndarray
    trade_id: list[str]
    exchange_code: list[str]

    @property
    def size(self) -> int:
        return self.ids.size

    def by_window(
        self, closes: np.ndarray, flags: np.ndarray
    ) -> dict[tuple[int, int], WindowTrades]:
        """Every (commodity, window)'s trades, in the kernel's order, with their verdicts."""
        order = np.lexsort((self.exchange, self.quantity, self.price, self.time, self.commodity))
        commodity, time = self.commodity[order], self.time[order]
        out = {}
        n_days = closes.shape[1] - 1
        for c in range(closes.shape[0]):
            first, stop = np.searchsorted(commodity, [c, c + 1])
            bounds = first + np.searchsorted(time[first:stop], closes[c], side="right")
            for d in range(n_days):
                picked = order[bounds[d] : bounds[d + 1]]
                out[(c, d)] = WindowTrades(
                    ids=self.ids[picked],
                    exchange=[self.exchange_code[i] for i in picked],
                    trade_id=[self.trade_id[i] for i in picked],
                    price=self.price[picked],
                    quantity=self.quantity[picked],
                    flags=flags[picked],
                )
        return out


def _instant(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def load_trades(session: Session, after_ms: int, through_ms: int, reference: Reference) -> Trades:
    """Active trades with ``after_ms < traded_at <= through_ms``."""
    rows = session.execute(
        select(
            models.Trade.id,
            models.Trade.trade_id,
            models.Trade.commodity_id,
            models.Trade.exchange_id,
            models.Trade.traded_at,
            models.Trade.price,
            models.Trade.quantity,
        ).where(
            models.Trade.status == "active",
            models.Trade.traded_at > _instant(after_ms),
            models.Trade.traded_at <= _instant(through_ms),
        )
    ).all()
    position = {commodity_id: c for c, commodity_id in enumerate(reference.ids)}
    rows = [r for r in rows if r.commodity_id in position]
    return Trades(
        commodity=np.array([position[r.commodity_id] for r in rows], dtype=np.int64),
        time=np.array([round(r.traded_at.timestamp() * 1000) for r in rows], dtype=np.int64),
        price=np.array([r.price for r in rows], dtype=np.float64),
        quantity=np.array([r.quantity for r in rows], dtype=np.float64),
        exchange=np.array([r.exchange_id for r in rows], dtype=np.int64),
        ids=np.array([r.id for r in rows], dtype=np.int64),
        trade_id=[r.trade_id for r in rows],
        exchange_code=[reference.exchange_codes.get(r.exchange_id, "") for r in rows],
    )


def _current(model):
    return model.superseded_at.is_(None)


def fallback_state(session: Session, engine, first_day: dt.date) -> FallbackState:
    """The fallback hierarchy's memory before ``first_day``, from published assessments."""
    state = FallbackState()
    reference = engine.reference
    A = models.Assessment
    with_price = A.fallback.in_(("none", "related"))
    latest = (
        select(A.commodity_id, func.max(A.date).label("date"))
        .where(_current(A), with_price, A.status != "provisional", A.date < first_day)
        .group_by(A.commodity_id)
        .subquery()
    )
    for commodity_id, day, price in session.execute(
        select(A.commodity_id, A.date, A.price)
        .join(latest, (latest.c.commodity_id == A.commodity_id) & (latest.c.date == A.date))
        .where(_current(A))
    ):
        if commodity_id in reference.ids and price is not None:
            state.anchors[reference.codes[reference.position(commodity_id)]] = Anchor(day, price)

    pairs = {
        (r.code, other) for r in engine.rules() for other in r.related if other in reference.codes
    }
    if pairs:
        horizon = first_day - dt.timedelta(
            days=3 * engine.methodology.assessment.related_max_age_days + 30
        )
        involved = {reference.ids[reference.codes.index(code)] for pair in pairs for code in pair}
        primary: dict[str, dict[dt.date, float]] = defaultdict(dict)
        for commodity_id, day, price in session.execute(
            select(A.commodity_id, A.date, A.price).where(
                _current(A),
                A.fallback == "none",
                A.status != "provisional",
                A.commodity_id.in_(involved),
                A.date >= horizon,
                A.date < first_day,
            )
        ):
            primary[reference.codes[reference.position(commodity_id)]][day] = price
        for code, other in pairs:
            common = sorted(set(primary[code]) & set(primary[other]))
            if common:
                day = common[-1]
                state.spreads[(code, other)] = Spread(day, primary[code][day], primary[other][day])
    return state


def assessment_dates(session: Session, since: dt.date | None, before: dt.date) -> list[dt.date]:
    """Dates with a published (non-provisional) assessment from ``since`` to before ``before``."""
    if since is None:
        return []
    A = models.Assessment
    return list(
        session.scalars(
            select(A.date)
            .where(_current(A), A.status != "provisional", A.date >= since, A.date < before)
            .distinct()
        )
    )


def fixed_assessments(session: Session, days: list[dt.date]) -> set[tuple[int, dt.date]]:
    A = models.Assessment
    return set(
        session.execute(
            select(A.commodity_id, A.date).where(_current(A), A.status.in_(FIXED), A.date.in_(days))
        ).all()
    )


def fixed_index_values(session: Session, day: dt.date) -> set[tuple[int, dt.date]]:
    V = models.IndexValue
    return set(
        session.execute(
            select(V.index_id, V.date).where(_current(V), V.status.in_(FIXED), V.date == day)
        ).all()
    )


def index_plans(session: Session, reference: Reference) -> list[IndexPlan]:
    """Every index with its members and every weight set stored for it."""
    sets: dict[int, dict[dt.date, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in session.scalars(select(models.IndexConstituent)):
        sets[row.index_id][row.effective_from][row.commodity_id] = row.weight
    plans = []
    for definition in session.scalars(
        select(models.IndexDefinition).order_by(models.IndexDefinition.id)
    ):
        by_date = sets.get(definition.id, {})
        member_ids = sorted({c for weights in by_date.values() for c in weights})
        if not member_ids:
            plans.append(
                IndexPlan(
                    definition.code,
                    definition.kind,
                    definition.base_date,
                    definition.base_value,
                    (),
                    (),
                    definition.id,
                )
            )
            continue
        members = tuple(reference.position(c) for c in member_ids)
        weight_sets = tuple(
            (effective, np.array([weights.get(c, 0.0) for c in member_ids]))
            for effective, weights in sorted(by_date.items())
        )
        plans.append(
            IndexPlan(
                code=definition.code,
                kind=definition.kind,
                base_date=definition.base_date,
                base_value=definition.base_value,
                members=members,
                weight_sets=weight_sets,
                index_id=definition.id,
            )
        )
    return plans


@dataclass(frozen=True)
class History:
    """Current assessments on a day axis: ``prices``/``present``/``fallback`` are (T, C)."""

    days: np.ndarray
    prices: np.ndarray
    present: np.ndarray
    fallback: np.ndarray  # object array of fallback names, "" where there is no row


def assessment_history(
    session: Session, since: dt.date, reference: Reference, include_provisional: bool
) -> History:
    A = models.Assessment
    query = select(A.commodity_id, A.date, A.price, A.fallback).where(_current(A), A.date >= since)
    if not include_provisional:
        query = query.where(A.status != "provisional")
    rows = [r for r in session.execute(query) if r.commodity_id in reference.ids]
    days = np.array(sorted({r.date for r in rows}), dtype="datetime64[D]")
    shape = (days.size, len(reference.ids))
    prices = np.full(shape, np.nan)
    present = np.zeros(shape, dtype=np.bool_)
    fallback = np.full(shape, "", dtype=object)
    if rows:
        t = np.searchsorted(days, np.array([r.date for r in rows], dtype="datetime64[D]"))
        c = np.array([reference.position(r.commodity_id) for r in rows])
        prices[t, c] = [np.nan if r.price is None else r.price for r in rows]
        present[t, c] = True
        fallback[t, c] = [r.fallback for r in rows]
    return History(days, prices, present, fallback)


def _last_priced_rows(prices: np.ndarray) -> np.ndarray:
    """For each (t, c): the last row ≤ t where column c has a price (-1 if none)."""
    rows = np.where(np.isfinite(prices), np.arange(prices.shape[0])[:, None], -1)
    return np.maximum.accumulate(rows, axis=0)


def index_rationale(
    plan: IndexPlan,
    result: IndexResult,
    position: int,
    history: History,
    reference: Reference,
    methodology: Methodology,
) -> dict:
    """``value = reference_value × Σ weight × level / reference_level`` over the constituents.

    Every level is a commodity index level (price / base-date price × base value);
    ``level_date`` is the date of the assessment behind it (earlier than the value's date
    when a suspended constituent carries its last level).
    """
    t = int(result.rows[position])
    members = list(plan.members)
    priced = _last_priced_rows(history.prices[:, members])
    base = result.base_prices
    if result.chained is None:
        reference_row, constant, weights = t, plan.base_value, np.ones(1)
        reference_date = plan.base_date
        levels = history.prices[priced[t, 0], members] / base * plan.base_value
        reference_levels = np.array([plan.base_value])
        weights_from = plan.base_date
        formula = "commodity_index"
    else:
        chained = result.chained
        p = int(chained.period_of_row[position])
        reference_position = int(chained.reference_rows[position])
        reference_row = int(result.rows[reference_position])
        reference_date = history.days[reference_row].item()
        constant = float(chained.constants[p])
        weights = chained.weights[p]
        levels = chained.levels[position]
        reference_levels = chained.levels[reference_position]
        weights_from = chained.weights_from[p]
        formula = "chain_linked_laspeyres"
    constituents = []
    for i, column in enumerate(members):
        source = int(priced[t, i])
        constituents.append(
            {
                "code": reference.codes[column],
                "weight": float(weights[i]),
                "level": float(levels[i]),
                "reference_level": float(reference_levels[i]),
                "fallback": history.fallback[t, column] or "missing",
                "level_date": history.days[source].item().isoformat(),
            }
        )
    del reference_row
    return {
        "formula": formula,
        "methodology_version": methodology.version,
        "reference_date": reference_date.isoformat(),
        "reference_value": constant,
        "normalising_constant": constant,
        "weights_effective_from": weights_from.isoformat(),
        "constituents": constituents,
    }


def constant_rows(result: IndexResult, history: History, methodology: Methodology) -> list[dict]:
    """The normalising constant of every period that has begun, by its first date."""
    chained = result.chained
    rows = []
    used = set(chained.period_of_row[chained.period_of_row >= 0].tolist())
    for p, start in enumerate(chained.period_starts):
        if p not in used:
            continue
        reference_row = int(result.rows[chained.period_reference[p]])
        rows.append(
            {
                "index_id": result.plan.index_id,
                "effective_from": start,
                "reference_date": history.days[reference_row].item(),
                "value": float(chained.constants[p]),
                "methodology_version": methodology.version,
            }
        )
    return rows


def save_constants(session: Session, rows: list[dict], now: dt.datetime) -> None:
    """Store each constant once per (index, effective date); a recomputed one is updated."""
    if not rows:
        return
    existing = {
        (c.index_id, c.effective_from): c for c in session.scalars(select(NormalisingConstant))
    }
    for row in rows:
        current = existing.get((row["index_id"], row["effective_from"]))
        reference_date = row["reference_date"]
        if current is None:
            session.add(
                NormalisingConstant(
                    index_id=row["index_id"],
                    effective_from=row["effective_from"],
                    reference_date=reference_date,
                    value=row["value"],
                    methodology_version=row["methodology_version"],
                    computed_at=now,
                )
            )
        elif (current.value, current.reference_date) != (row["value"], reference_date):
            current.value, current.reference_date = row["value"], reference_date
            current.methodology_version = row["methodology_version"]
            current.computed_at = now
    session.flush()


def record_fixings(session: Session, rows: list[dict], now: dt.datetime) -> None:
    """Daily OHLC of every published final value: its intraday values, closed by the fixing."""
    if not rows:
        return
    days = [r["date"] for r in rows]
    first, last = min(days), max(days)
    ticks: dict[tuple[int, dt.date], list[float]] = defaultdict(list)
    for index_id, day, value in session.execute(
        select(IntradayIndexValue.index_id, IntradayIndexValue.date, IntradayIndexValue.value)
        .where(IntradayIndexValue.date >= first, IntradayIndexValue.date <= last)
        .order_by(IntradayIndexValue.observed_at)
    ):
        ticks[(index_id, day)].append(value)
    existing = {
        (o.index_id, o.date): o
        for o in session.scalars(
            select(IndexDailyOHLC).where(IndexDailyOHLC.date >= first, IndexDailyOHLC.date <= last)
        )
    }
    inserts = []
    for row in rows:
        key = (row["index_id"], row["date"])
        observed = ticks.get(key, [])
        close = row["value"]
        values = {
            "open": observed[0] if observed else close,
            "high": max([*observed, close]),
            "low": min([*observed, close]),
            "close": close,
            "observations": len(observed),
            "status": "final",
        }
        current = existing.get(key)
        if current is None:
            inserts.append({"index_id": key[0], "date": key[1], "updated_at": now, **values})
        elif any(getattr(current, k) != v for k, v in values.items()):
            session.execute(
                update(IndexDailyOHLC)
                .where(IndexDailyOHLC.id == current.id)
                .values(updated_at=now, **values)
            )
    if inserts:
        session.execute(IndexDailyOHLC.__table__.insert(), inserts)
