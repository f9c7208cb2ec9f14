"""Every index from the daily assessments: commodity indices, then sector and composite.

Commodity index = assessment / assessment on the base date × base value. Sector and
composite indices chain-link (:mod:`index.chain`) the commodity index levels of their
members, each member weighted by the weight set in force. An index that has not started
(nothing published yet) starts on the first day from its base date on where every member
has an assessed price; once started, its base date is fixed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.errors import InvalidInput
from index.chain import ChainedIndex, chain_link


@dataclass(frozen=True)
class IndexPlan:
    """One index: its members (columns of the price matrix) and its weight sets.

    ``weight_sets`` are ``(effective_from, weights)`` sorted by date; the latest one
    effective on or before the base date applies from the base date.
    """

    code: str
    kind: str
    base_date: dt.date
    base_value: float
    members: tuple[int, ...]
    weight_sets: tuple[tuple[dt.date, np.ndarray], ...]
    index_id: int = 0
    started: bool = True
    """``base_date`` is fixed (the index has published values); otherwise it is the earliest
    day the index may start on."""


@dataclass
class IndexResult:
    """Values on ``rows`` (positions in the day axis) or the reason there are none."""

    plan: IndexPlan
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    chained: ChainedIndex | None = None
    base_prices: np.ndarray | None = None
    base_rows: np.ndarray | None = None
    """Each member's base row: the index's base row, or where a member that joined later
    was first priced."""
    base_date: dt.date | None = None
    """The day the index's level is its base value."""
    skipped: str | None = None


def commodity_levels(prices: np.ndarray, base_row: int, base_value: float) -> np.ndarray:
    """Commodity index levels: each column over its base-row price, times the base value
    (a member that joins later: over its first price after the base row)."""
    return prices / first_prices(prices, first_rows(prices, base_row)) * base_value


def first_rows(prices: np.ndarray, base_row: int) -> np.ndarray:
    """Each column's first row with a price, from the base row on (-1: none)."""
    finite = np.isfinite(prices[base_row:])
    return np.where(finite.any(axis=0), base_row + np.argmax(finite, axis=0), -1)


def first_prices(prices: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each column's price on its row of ``rows`` (NaN where the row is -1)."""
    found = prices[np.maximum(rows, 0), np.arange(prices.shape[1])]
    return np.where(rows >= 0, found, np.nan)


def recompute(
    days: np.ndarray, prices: np.ndarray, present: np.ndarray, plans: Sequence[IndexPlan]
) -> list[IndexResult]:
    """Every planned index over the day axis ``days`` (sorted datetime64[D]).

    ``prices[t, c]`` is commodity c's assessed price on ``days[t]`` (NaN when it has none or
    is suspended); ``present[t, c]`` says whether it has an assessment row at all. An index
    has a value on each day from its base date on where any member has a row.
    """
    days = np.asarray(days, dtype="datetime64[D]")
    results = []
    for plan in plans:
        result = IndexResult(plan)
        results.append(result)
        members = list(plan.members)
        base_row = _base_row(days, prices, plan)
        if base_row is None:
            when = "on the base date" if plan.started else "on or after"
            result.skipped = (
                f"no day with an assessed price of every member {when} {plan.base_date}"
            )
            continue
        result.base_date = days[base_row].item()
        result.base_rows = first_rows(prices[:, members], base_row)
        result.base_prices = first_prices(prices[:, members], result.base_rows)
        rows = np.flatnonzero(present[:, members].any(axis=1))
        rows = rows[rows >= base_row]
        result.rows = rows
        if plan.kind == "commodity":
            (c,) = members
            result.values = prices[rows, c] / prices[base_row, c] * plan.base_value
            continue
        levels = commodity_levels(prices[np.ix_(rows, members)], 0, plan.base_value)
        (_, base_weights), *later = _split_weight_sets(plan, result.base_date)
        try:
            result.chained = chain_link(
                days[rows],
                levels,
                base_weights,
                days[base_row],
                plan.base_value,
                weight_changes=later,
            )
        except InvalidInput as exc:  # a member joining with no level on its link day
            result.rows, result.skipped = rows[:0], exc.reason
            continue
        result.values = result.chained.values
    return results


def _base_row(days: np.ndarray, prices: np.ndarray, plan: IndexPlan) -> int | None:
    """The row of the index's base day: its fixed base date, or (not started) the first day
    from its base date on with an assessed price of every member."""
    members = list(plan.members)
    if not members:
        return None
    first = np.datetime64(plan.base_date, "D")
    weighted = [m for m, w in zip(members, _weights_on(plan, plan.base_date), strict=True) if w > 0]
    priced = np.all(np.isfinite(prices[:, weighted]), axis=1)
    if plan.started:
        rows = np.flatnonzero((days == first) & priced)
    else:
        rows = np.flatnonzero((days >= first) & priced)
    return int(rows[0]) if rows.size else None


def _weights_on(plan: IndexPlan, day: dt.date) -> np.ndarray:
    """The weights in force on ``day`` (the first set if none is yet)."""
    sets = sorted(plan.weight_sets, key=lambda s: s[0])
    on = [w for effective, w in sets if effective <= day]
    return on[-1] if on else sets[0][1]


def _split_weight_sets(plan: IndexPlan, base: dt.date) -> list[tuple[dt.date, np.ndarray]]:
    """The weights in force on the base day first, then every later weight set."""
    sets = sorted(plan.weight_sets, key=lambda s: s[0])
    on_base = [s for s in sets if s[0] <= base]
    if not on_base:
        raise ValueError(f"index {plan.code} has no weights in force on {base}")
    return [on_base[-1], *(s for s in sets if s[0] > base)]
