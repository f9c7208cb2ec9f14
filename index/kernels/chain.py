"""Chain-linked Laspeyres over constituent index levels."""

from __future__ import annotations

import numpy as np

from index.jit import njit


@njit
def chain_linked_laspeyres(levels, weights, is_link, base_row, base_value):
    """Index value per row of ``levels`` (rows are dates, columns constituents).

    From ``base_row`` on, each value is the value at the latest link row times the
    weighted sum of each constituent's level relative to its level at that link row;
    the base row is the first link. ``levels`` must be finite from ``base_row`` on.
    Rows before ``base_row`` are NaN.
    """
    n_rows, n_items = levels.shape
    out = np.full(n_rows, np.nan)
    ref = base_row
    ref_value = base_value
    for t in range(base_row, n_rows):
        total = 0.0
        for i in range(n_items):
            total += weights[i] * (levels[t, i] / levels[ref, i])
        out[t] = ref_value * total
        if is_link[t]:
            ref = t
            ref_value = out[t]
    return out
