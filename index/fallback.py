"""The fallback hierarchy: what each commodity's assessment rests on, day by day.

Level 0 (``none``): the window's own qualifying trades meet every sufficiency test.
Level 1 (``related``): a related commodity's level-0 assessment the same day, times the
spread between the two on the latest day both had level-0 assessments, if that day lies
within ``related_max_age_days`` trading days. Level 2 (``stale``): the latest level-0 or
level-1 assessment carried forward, for at most ``stale_days`` trading days. Level 3
(``suspended``): no price.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

FallbackName = Literal["none", "related", "stale", "suspended"]
LEVELS: dict[str, int] = {"none": 0, "related": 1, "stale": 2, "suspended": 3}


@dataclass(frozen=True)
class Anchor:
    """A commodity's latest assessment with a price of its own (level 0 or 1)."""

    date: dt.date
    price: float


@dataclass(frozen=True)
class Spread:
    """The latest day both commodities of a related pair had level-0 assessments."""

    date: dt.date
    price: float
    related_price: float


@dataclass(frozen=True)
class Decision:
    name: FallbackName
    price: float | None
    detail: dict

    @property
    def level(self) -> int:
        return LEVELS[self.name]


@dataclass
class FallbackState:
    """What the hierarchy remembers between days; seeded from the published history."""

    anchors: dict[str, Anchor] = field(default_factory=dict)
    spreads: dict[tuple[str, str], Spread] = field(default_factory=dict)

    def earliest(self) -> dt.date | None:
        dates = [a.date for a in self.anchors.values()] + [s.date for s in self.spreads.values()]
        return min(dates, default=None)


def resolve_day(
    day: dt.date,
    primary: dict[str, float | None],
    related: dict[str, tuple[str, ...]],
    state: FallbackState,
    trading_days_between,
    *,
    stale_days: int,
    related_max_age_days: int,
) -> dict[str, Decision]:
    """Decide every commodity's assessment on ``day`` and advance ``state``.

    ``primary[code]`` is the level-0 price (the VWAP of a sufficient window) or None.
    ``trading_days_between(a, b)`` counts the trading days in ``(a, b]``.
    """
    decisions: dict[str, Decision] = {}
    for code, price in primary.items():
        if price is not None:
            decisions[code] = Decision("none", price, {})
            continue
        decision = None
        for other in related.get(code, ()):
            other_price = primary.get(other)
            spread = state.spreads.get((code, other))
            if other_price is None or spread is None:
                continue
            age = trading_days_between(spread.date, day)
            if age > related_max_age_days:
                continue
            factor = spread.price / spread.related_price
            decision = Decision(
                "related",
                other_price * factor,
                {
                    "commodity": other,
                    "related_price": other_price,
                    "spread_date": spread.date.isoformat(),
                    "spread_price": spread.price,
                    "spread_related_price": spread.related_price,
                    "factor": factor,
                    "spread_age_days": age,
                },
            )
            break
        if decision is None:
            anchor = state.anchors.get(code)
            age = trading_days_between(anchor.date, day) if anchor else None
            carried = {
                "last_assessment": anchor.date.isoformat() if anchor else None,
                "stale_days": age,
                "max_stale_days": stale_days,
            }
            if anchor is not None and age <= stale_days:
                decision = Decision(
                    "stale", anchor.price, {**carried, "carried_price": anchor.price}
                )
            else:
                decision = Decision("suspended", None, carried)
        decisions[code] = decision

    for code, decision in decisions.items():
        if decision.name in ("none", "related"):
            state.anchors[code] = Anchor(day, decision.price)
    for code, others in related.items():
        for other in others:
            if primary.get(code) is not None and primary.get(other) is not None:
                state.spreads[(code, other)] = Spread(day, primary[code], primary[other])
    return decisions
