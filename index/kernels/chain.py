"""Chain-linked Laspeyres over constituent index levels, with weight periods."""

from __future__ import annotations

import numpy as np

from index.jit import njit


@njit
def forward_fill(levels):
    """Each NaN after a column's first value takes the column's last value."""
    filled = levels.copy()
    n_rows, n_items = filled.shape
    for t in range(1, n_rows):
        for i in range(n_items):
            if np.isnan(filled[t, i]):
                filled[t, i] = filled[t - 1, i]
    return filled


@njit
def chain_linked_laspeyres(
    levels, period_weights, period_of_row, period_reference, base_row, base_value
):
    """Index value per row of ``levels`` (rows are dates, columns constituents).

    Row t belongs to period ``p = period_of_row[t]`` with weights ``period_weights[p]`` and
    reference row ``r = period_reference[p]``; its value is the period's normalising
    constant times Σ weight × level[t] / level[r]. Period 0 is the base period (reference:
    the base row, constant: ``base_value``); a later period's constant is the value of its
    reference row, so the level does not jump when a period begins. The levels of the
    members weighted in a period must be finite from its reference row on (a member joins
    with a weight set); rows before ``base_row`` are NaN. Returns (values, constants).
    """
    n_rows, n_items = levels.shape
    out = np.full(n_rows, np.nan)
    constants = np.full(period_weights.shape[0], np.nan)
    constants[0] = base_value
    for t in range(base_row, n_rows):
        p = period_of_row[t]
        if np.isnan(constants[p]):
            constants[p] = out[period_reference[p]]
        ref = period_reference[p]
        total = 0.0
        for i in range(n_items):
            if period_weights[p, i] != 0.0:  # a member that has not joined may have no level
                total += period_weights[p, i] * (levels[t, i] / levels[ref, i])
        out[t] = constants[p] * total
    return out, constants
