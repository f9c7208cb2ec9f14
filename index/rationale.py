"""Rationale records: what each published number rests on, in JSON a reader can check.

Trade listings are bounded (``listed_trades_limit`` per list); the counts are always exact
and ``trades_digest`` (SHA-256 over every trade's exchange and trade id, price, quantity and
verdict) pins the full set even when a list is cut.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from core.methodology import Methodology
from index.kernels.assessment import AFFILIATED, BELOW_MIN_LOT, OUTLIER, USED
from index.levels import IndexPlan, IndexResult


@dataclass(frozen=True)
class WindowTrades:
    """One commodity's trades in one window, in the kernel's order, with their verdicts."""

    ids: np.ndarray
    exchange: list[str]
    trade_id: list[str]
    price: np.ndarray
    quantity: np.ndarray
    flags: np.ndarray

    def listing(self, mask: np.ndarray, rule_of=None, limit: int = 1000) -> list[dict]:
        out = []
        for i in np.flatnonzero(mask)[:limit]:
            item = {
                "exchange": self.exchange[i],
                "trade_id": self.trade_id[i],
                "price": float(self.price[i]),
                "quantity": float(self.quantity[i]),
            }
            if rule_of is not None:
                item["rule"] = rule_of(int(self.flags[i]))
            out.append(item)
        return out

    def digest(self) -> str:
        # Trades by (exchange, trade id), never by database row id: a replay into another
        # database, or a reader holding the trades, can recompute it.
        h = hashlib.sha256()
        for exchange, trade_id in zip(self.exchange, self.trade_id, strict=True):
            h.update(f"{exchange}\x1f{trade_id}\x1e".encode())
        for array in (self.price, self.quantity, self.flags):
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()


def finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def canonical_hash(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def assessment_rationale(
    *,
    methodology_version: str,
    parameters: dict,
    window: dict,
    statistics: dict,
    failed: list[str],
    fallback: dict,
    own: WindowTrades,
    basis: WindowTrades | None,
    outlier_rule: str,
    limit: int,
) -> dict:
    """The rationale of one assessment.

    ``own`` are the window's trades; ``basis`` the trades the price rests on (``own`` at
    level 0, the related commodity's at level 1, none when stale or suspended). Own trades
    that qualified but did not make the price are listed as excluded under the rule
    ``insufficient_data``.
    """
    own_used = own.flags == USED
    rules = {BELOW_MIN_LOT: "min_lot", AFFILIATED: "affiliated", OUTLIER: outlier_rule}
    if basis is own:
        excluded_mask = ~own_used
    else:
        excluded_mask = np.ones(own.flags.size, dtype=np.bool_)
        rules[USED] = "insufficient_data"
    used = basis.flags == USED if basis is not None else None
    n_used = int(used.sum()) if used is not None else 0
    n_excluded = int(excluded_mask.sum())
    return {
        "methodology_version": methodology_version,
        "parameters": parameters,
        "window": window,
        "statistics": statistics,
        "sufficiency": {"met": not failed, "failed": failed},
        "fallback": fallback,
        "trades_used": basis.listing(used, limit=limit) if basis is not None else [],
        "excluded": own.listing(excluded_mask, rules.__getitem__, limit=limit),
        "trades_used_count": n_used,
        "excluded_count": n_excluded,
        "listed_limit": limit,
        "truncated": n_used > limit or n_excluded > limit,
        "trades_digest": own.digest() if basis is None or basis is own else _pair(own, basis),
    }


def _pair(own: WindowTrades, basis: WindowTrades) -> str:
    return hashlib.sha256((own.digest() + basis.digest()).encode()).hexdigest()


def _last_priced_rows(prices: np.ndarray) -> np.ndarray:
    """For each (t, c): the last row ≤ t where column c has a price (-1 if none)."""
    rows = np.where(np.isfinite(prices), np.arange(prices.shape[0])[:, None], -1)
    return np.maximum.accumulate(rows, axis=0)


def index_rationale(
    plan: IndexPlan,
    result: IndexResult,
    position: int,
    history,
    reference,
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
        reference_date = result.base_date
        levels = history.prices[priced[t, 0], members] / base * plan.base_value
        reference_levels = np.array([plan.base_value])
        weights_from = result.base_date
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
    base_row = int(result.rows[0])
    for i, column in enumerate(members):
        if weights[i] == 0:  # not a member yet (it joins with a later weight set)
            continue
        source = int(priced[t, i])
        member = {
            "code": reference.codes[column],
            "weight": float(weights[i]),
            "level": float(levels[i]),
            "reference_level": float(reference_levels[i]),
            "fallback": history.fallback[t, column] or "missing",
            "level_date": history.days[source].item().isoformat(),
        }
        own_base = int(result.base_rows[i])
        if own_base != base_row:  # a member that joined: levels over its first price
            member["base_date"] = history.days[own_base].item().isoformat()
        constituents.append(member)
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
