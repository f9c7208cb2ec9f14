"""Every index from the daily assessments: commodity indices, then sector and composite.

Commodity index = assessment / assessment on the base date × base value. Sector and
composite indices chain-link (:mod:`index.chain`) the commodity index levels of their
members, each member weighted by the weight set in force.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

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


@dataclass
class IndexResult:
    """Values on ``rows`` (positions in the day axis) or the reason there are none."""

    plan: IndexPlan
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    chained: ChainedIndex | None = None
    base_prices: np.ndarray | None = None
    skipped: str | None = None


def commodity_levels(prices: np.ndarray, base_row: int, base_value: float) -> np.ndarray:
    """Commodity index levels: each column over its base-row price, times the base value."""
    return prices / prices[base_row] * base_value


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
        base_rows = np.flatnonzero(days == np.datetime64(plan.base_date, "D"))
        members = list(plan.members)
        if base_rows.size == 0 or not np.all(np.isfinite(prices[base_rows[0], members])):
            missing = (
                members
                if base_rows.size == 0
                else [c for c in members if not np.isfinite(prices[base_rows[0], c])]
            )
            result.skipped = f"no assessed price on the base date {plan.base_date} for {missing}"
            continue
        base_row = int(base_rows[0])
        result.base_prices = prices[base_row, members].copy()
        rows = np.flatnonzero(present[:, members].any(axis=1))
        rows = rows[rows >= base_row]
        result.rows = rows
        if plan.kind == "commodity":
            (c,) = members
            result.values = prices[rows, c] / prices[base_row, c] * plan.base_value
            continue
        levels = commodity_levels(prices[np.ix_(rows, members)], 0, plan.base_value)
        (_, base_weights), *later = _split_weight_sets(plan)
        result.chained = chain_link(
            days[rows],
            levels,
            base_weights,
            days[base_row],
            plan.base_value,
            weight_changes=later,
        )
        result.values = result.chained.values
    return results


def _split_weight_sets(plan: IndexPlan) -> list[tuple[dt.date, np.ndarray]]:
    """The weights in force on the base date first, then every later weight set."""
    sets = sorted(plan.weight_sets, key=lambda s: s[0])
    on_base = [s for s in sets if s[0] <= plan.base_date]
    if not on_base:
        raise ValueError(f"index {plan.code} has no weights in force on {plan.base_date}")
    return [on_base[-1], *(s for s in sets if s[0] > plan.base_date)]
