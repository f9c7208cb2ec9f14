"""Checked wrapper around the chain-linked Laspeyres kernel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bcpi.errors import InvalidInput
from index.kernels.chain import chain_linked_laspeyres


def year_end_links(days: np.ndarray) -> np.ndarray:
    """True on the last date of each calendar year present in ``days`` (sorted datetime64[D])."""
    years = days.astype("datetime64[Y]")
    is_link = np.zeros(days.size, dtype=np.bool_)
    if days.size:
        is_link[:-1] = years[1:] != years[:-1]
    return is_link


@dataclass(frozen=True)
class ChainedIndex:
    """``values[t] = values[r] × Σ weights · levels[t] / levels[r]`` with ``r = reference_rows[t]``.

    ``levels`` are the constituent levels actually used (gaps carried forward).
    """

    values: np.ndarray
    reference_rows: np.ndarray
    levels: np.ndarray


def reference_rows(is_link: np.ndarray, base_row: int) -> np.ndarray:
    """For each row from ``base_row`` on, the link row its value is chained from (-1 before)."""
    rows = np.full(is_link.size, -1, dtype=np.int64)
    reference = base_row
    for t in range(base_row, is_link.size):
        rows[t] = reference
        if is_link[t]:
            reference = t
    return rows


def chain_link(
    days: np.ndarray,
    levels: np.ndarray,
    weights: np.ndarray,
    base_day: np.datetime64,
    base_value: float,
) -> ChainedIndex:
    """Chain-linked Laspeyres of constituent levels, re-linked at each year end.

    ``levels[t, i]`` is constituent i's level on ``days[t]``; gaps (NaN) after a
    constituent's first value carry its last value forward. Values before ``base_day``
    are NaN.
    """
    days = np.asarray(days, dtype="datetime64[D]")
    levels = np.array(levels, dtype=np.float64, ndmin=2)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if levels.shape != (days.size, weights.size):
        raise InvalidInput("levels", f"shape {levels.shape} != ({days.size}, {weights.size})")
    if days.size > 1 and np.any(np.diff(days) <= np.timedelta64(0, "D")):
        raise InvalidInput("days", "must be strictly increasing")
    if not (np.all(np.isfinite(weights)) and np.all(weights > 0)):
        raise InvalidInput("weights", "every weight must be finite and > 0")
    if abs(weights.sum() - 1.0) > 1e-9:
        raise InvalidInput("weights", f"must sum to 1, not {weights.sum()!r}")
    base_rows = np.flatnonzero(days == np.datetime64(base_day, "D"))
    if base_rows.size == 0:
        raise InvalidInput("base_day", f"{base_day} is not among the days")
    base_row = int(base_rows[0])

    filled = levels.copy()
    for t in range(1, filled.shape[0]):
        gap = np.isnan(filled[t])
        filled[t, gap] = filled[t - 1, gap]
    if not np.all(np.isfinite(filled[base_row:])) or np.any(filled[base_row:] <= 0):
        raise InvalidInput("levels", "every constituent needs a positive level on the base day")
    is_link = year_end_links(days)
    values = chain_linked_laspeyres(
        np.ascontiguousarray(filled), weights, is_link, base_row, float(base_value)
    )
    return ChainedIndex(values, reference_rows(is_link, base_row), filled)
