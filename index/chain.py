"""Checked wrapper around the chain-linked Laspeyres kernel.

Periods begin on the base date, on every 1 January after it (the annual chain link) and on
every effective date of a new weight set. Each period is chained to the last index day
before it begins (its reference row), whose value becomes the period's normalising
constant: ``value[t] = NC[p] × Σ w[p, i] × level[t, i] / level[r(p), i]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInput
from index.kernels import chain as kernel

WEIGHT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ChainedIndex:
    """``values[t] = constants[p] × Σ weights[p] · levels[t] / levels[r]``.

    ``p = period_of_row[t]`` and ``r = reference_rows[t]`` (-1 before the base row);
    ``levels`` are the constituent levels actually used (gaps carried forward);
    ``period_starts[p]`` is the first date of period p and ``weights_from[p]`` the effective
    date of the weights it uses.
    """

    values: np.ndarray
    reference_rows: np.ndarray
    levels: np.ndarray
    period_of_row: np.ndarray
    period_starts: list[dt.date]
    weights: np.ndarray
    weights_from: list[dt.date]
    constants: np.ndarray
    period_reference: np.ndarray


def _check_weights(name: str, weights: np.ndarray, n_items: int) -> np.ndarray:
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.shape != (n_items,):
        raise InvalidInput(name, f"has shape {weights.shape}, expected ({n_items},)")
    if not (np.all(np.isfinite(weights)) and np.all(weights >= 0)):
        raise InvalidInput(name, "every weight must be finite and >= 0")
    if abs(weights.sum() - 1.0) > WEIGHT_TOLERANCE:
        raise InvalidInput(name, f"must sum to 1, not {weights.sum()!r}")
    return weights


def forward_fill(levels: np.ndarray) -> np.ndarray:
    """Each NaN after a column's first value takes the column's last value."""
    return kernel.forward_fill(np.ascontiguousarray(levels, dtype=np.float64))


def chain_link(
    days,
    levels,
    weights,
    base_day,
    base_value: float,
    *,
    weight_changes: Sequence[tuple[dt.date, np.ndarray]] = (),
) -> ChainedIndex:
    """Chain-linked Laspeyres of constituent levels, re-linked every year and reweighting.

    ``levels[t, i]`` is constituent i's level on ``days[t]`` (strictly increasing); gaps
    (NaN) after a constituent's first value carry its last value forward. ``weights``
    apply from the base day; each ``(effective_from, weights)`` in ``weight_changes``
    replaces them from its date on. A constituent weighted 0 takes no part in a period
    (it joins with a later weight set, and needs a level from that period's link day on).
    Values before ``base_day`` are NaN.
    """
    days = np.asarray(days, dtype="datetime64[D]")
    levels = np.array(levels, dtype=np.float64, ndmin=2)
    n_items = levels.shape[1] if levels.size else np.asarray(weights).size
    base_weights = _check_weights("weights", weights, n_items)
    if levels.shape != (days.size, n_items):
        raise InvalidInput("levels", f"shape {levels.shape} != ({days.size}, {n_items})")
    if days.size > 1 and np.any(np.diff(days) <= np.timedelta64(0, "D")):
        raise InvalidInput("days", "must be strictly increasing")
    base_rows = np.flatnonzero(days == np.datetime64(base_day, "D"))
    if base_rows.size == 0:
        raise InvalidInput("base_day", f"{base_day} is not among the days")
    base_row = int(base_rows[0])
    base = days[base_row].item()
    changes = sorted(
        (effective, _check_weights(f"weights from {effective}", w, n_items))
        for effective, w in weight_changes
    )

    filled = forward_fill(levels)

    last = days[-1].item()
    starts = {base}
    starts.update(dt.date(y, 1, 1) for y in range(base.year + 1, last.year + 1))
    starts.update(effective for effective, _ in changes if base < effective <= last)
    period_starts = sorted(starts)
    period_weights = np.empty((len(period_starts), n_items))
    weights_from: list[dt.date] = []
    for p, start in enumerate(period_starts):
        chosen, chosen_from = base_weights, base
        for effective, w in changes:
            if effective <= start:
                chosen, chosen_from = w, max(effective, base)
        period_weights[p] = chosen
        weights_from.append(chosen_from)

    start_days = np.array(period_starts, dtype="datetime64[D]")
    period_of_row = np.searchsorted(start_days, days, side="right").astype(np.int64) - 1
    period_reference = np.searchsorted(days, start_days, side="left").astype(np.int64) - 1
    period_reference[0] = base_row
    period_ends = [*np.searchsorted(days, start_days[1:], side="left"), days.size]
    for p, weights in enumerate(period_weights):
        used = filled[period_reference[p] : period_ends[p], weights > 0]
        if not np.all(np.isfinite(used)) or np.any(used <= 0):
            when = "base day" if p == 0 else f"link day before {period_starts[p]}"
            raise InvalidInput(
                "levels", f"every weighted constituent needs a positive level from the {when}"
            )
    values, constants = kernel.chain_linked_laspeyres(
        np.ascontiguousarray(filled),
        period_weights,
        np.maximum(period_of_row, 0),
        period_reference,
        base_row,
        float(base_value),
    )
    reference_rows = np.full(days.size, -1, dtype=np.int64)
    reference_rows[base_row:] = period_reference[period_of_row[base_row:]]
    return ChainedIndex(
        values=values,
        reference_rows=reference_rows,
        levels=filled,
        period_of_row=period_of_row,
        period_starts=period_starts,
        weights=period_weights,
        weights_from=weights_from,
        constants=constants,
        period_reference=period_reference,
    )
