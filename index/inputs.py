"""What a computation reads from the store: the reference data, the trades of a range of
windows, the published assessments before it (the fallbacks' memory) and their history, and
every index's members and weight sets."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from index.fallback import Anchor, FallbackState, Spread
from index.levels import IndexPlan
from index.rationale import WindowTrades
from store import models
from store.models import FIXED, PROVISIONAL


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
    affiliated: np.ndarray
    buyer: np.ndarray
    seller: np.ndarray
    """Participant ids per (role, exchange, code), -1 where the exchange sent none."""

    def participants(self) -> dict[str, np.ndarray]:
        """The arm's-length columns as :func:`index.assessment.assess_windows` takes them."""
        return {"affiliated": self.affiliated, "buyer": self.buyer, "seller": self.seller}

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
            models.Trade.buyer,
            models.Trade.seller,
            models.Trade.affiliated,
        ).where(
            models.Trade.status == "active",
            models.Trade.traded_at > _instant(after_ms),
            models.Trade.traded_at <= _instant(through_ms),
        )
    ).all()
    position = {commodity_id: c for c, commodity_id in enumerate(reference.ids)}
    rows = [r for r in rows if r.commodity_id in position]
    codes: dict[tuple[str, int, str], int] = {}

    def participant(role: str, exchange_id: int, code: str | None) -> int:
        return -1 if code is None else codes.setdefault((role, exchange_id, code), len(codes))

    return Trades(
        commodity=np.array([position[r.commodity_id] for r in rows], dtype=np.int64),
        time=np.array([round(r.traded_at.timestamp() * 1000) for r in rows], dtype=np.int64),
        price=np.array([r.price for r in rows], dtype=np.float64),
        quantity=np.array([r.quantity for r in rows], dtype=np.float64),
        exchange=np.array([r.exchange_id for r in rows], dtype=np.int64),
        ids=np.array([r.id for r in rows], dtype=np.int64),
        trade_id=[r.trade_id for r in rows],
        exchange_code=[reference.exchange_codes.get(r.exchange_id, "") for r in rows],
        affiliated=np.array([bool(r.affiliated) for r in rows], dtype=np.bool_),
        buyer=np.array([participant("b", r.exchange_id, r.buyer) for r in rows], dtype=np.int64),
        seller=np.array([participant("s", r.exchange_id, r.seller) for r in rows], dtype=np.int64),
    )


def _current(model):
    return model.superseded_at.is_(None)


def fallback_state(
    session: Session,
    reference: Reference,
    related: dict[str, tuple[str, ...]],
    first_day: dt.date,
    related_max_age_days: int,
) -> FallbackState:
    """The fallback hierarchy's memory before ``first_day``, from published assessments:
    each commodity's last price, and each ``related`` pair's last common spread."""
    state = FallbackState()
    A = models.Assessment
    with_price = A.fallback.in_(("none", "related"))
    latest = (
        select(A.commodity_id, func.max(A.date).label("date"))
        .where(_current(A), with_price, A.status.in_(FIXED), A.date < first_day)
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

    codes = set(reference.codes)
    pairs = {
        (code, other) for code, others in related.items() for other in others if other in codes
    }
    if pairs:
        horizon = first_day - dt.timedelta(days=3 * related_max_age_days + 30)
        involved = {reference.ids[reference.codes.index(code)] for pair in pairs for code in pair}
        primary: dict[str, dict[dt.date, float]] = defaultdict(dict)
        for commodity_id, day, price in session.execute(
            select(A.commodity_id, A.date, A.price).where(
                _current(A),
                A.fallback == "none",
                A.status.in_(FIXED),
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


def band_rejections(
    session: Session, days: list[dt.date], reference: Reference
) -> dict[tuple[int, dt.date], dict]:
    """Rows refused by the price band at ingest, by (commodity position, window day)."""
    rows = session.execute(
        select(
            models.BandRejection.commodity_id,
            models.BandRejection.window_day,
            models.BandRejection.band_low,
            models.BandRejection.band_high,
            func.sum(models.BandRejection.rows),
        )
        .where(models.BandRejection.window_day.in_(days))
        .group_by(
            models.BandRejection.commodity_id,
            models.BandRejection.window_day,
            models.BandRejection.band_low,
            models.BandRejection.band_high,
        )
        .order_by(models.BandRejection.band_low, models.BandRejection.band_high)
    )
    position = {commodity_id: c for c, commodity_id in enumerate(reference.ids)}
    out: dict[tuple[int, dt.date], dict] = {}
    for commodity_id, day, low, high, count in rows:
        if commodity_id not in position:
            continue
        entry = out.setdefault((position[commodity_id], day), {"rows": 0, "bands": []})
        entry["rows"] += int(count)
        entry["bands"].append({"band": [low, high], "rows": int(count)})
    return out


def assessment_dates(session: Session, since: dt.date | None, before: dt.date) -> list[dt.date]:
    """Dates with a fixed assessment (final or restated) from ``since`` to before ``before``."""
    if since is None:
        return []
    A = models.Assessment
    return list(
        session.scalars(
            select(A.date)
            .where(_current(A), A.status.in_(FIXED), A.date >= since, A.date < before)
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
                    definition.first_date,
                    definition.base_value,
                    (),
                    (),
                    definition.id,
                    started=definition.started_on is not None,
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
                base_date=definition.first_date,
                base_value=definition.base_value,
                members=members,
                weight_sets=weight_sets,
                index_id=definition.id,
                started=definition.started_on is not None,
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
    query = query.where(A.status.in_((*FIXED, PROVISIONAL) if include_provisional else FIXED))
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
