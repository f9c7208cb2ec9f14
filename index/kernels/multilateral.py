"""Numba kernels for multilateral price indices over rolling windows, and for extending a
series past its first window.

Inputs are as in :mod:`index.kernels.formulas`: ``prices`` and ``quantities`` indexed
``[period, item]``, NaN where the item is absent. A window's levels are 1 in its first
period. GEKS builds on the logarithms of the bilateral comparisons, ``log_pairs`` (a
window with a NaN comparison is NaN throughout). Geary-Khamis (GK) and the weighted
time-product-dummy method (WTPD) use every item priced in the window; a period that no
chain of items priced in common joins to the window's first period is NaN.
"""

from __future__ import annotations

import numba
import numpy as np

from index.jit import njit, njit_parallel

GEKS = 0
GK = 1
WTPD = 2

# Splices link the new window's movement at overlap periods onto the previous window's
# levels (MOVEMENT, WINDOW, HALF, MEAN) or onto the published series (WISP, HASP,
# MEAN_PUBLISHED); FBEW and FBMW multiply a fixed base's published value instead.
MOVEMENT = 0
WINDOW = 1
HALF = 2
MEAN = 3
WISP = 4
HASP = 5
MEAN_PUBLISHED = 6
FBEW = 7
FBMW = 8


@njit
def geks_levels(log_pairs, start, stop):
    """GEKS over periods ``start .. stop - 1``: P(s, t) = prod_k [P(s, k) P(k, t)] ** (1 / W),
    from the logarithms of the bilateral comparisons."""
    size = stop - start
    log_levels = np.empty(size)
    for t in range(size):
        total = 0.0
        for k in range(size):
            total += log_pairs[start, start + k] + log_pairs[start + k, start + t]
        log_levels[t] = total / size
    return np.exp(log_levels - log_levels[0])


@njit
def _linked(prices):
    """Periods joined to the first by items priced in common (directly or through other
    periods), and the items priced in them."""
    periods, items = prices.shape
    present = np.isfinite(prices)
    period_in = np.zeros(periods, np.bool_)
    item_in = np.zeros(items, np.bool_)
    period_in[0] = True
    grown = True
    while grown:
        grown = False
        for t in range(periods):
            for i in range(items):
                if present[t, i] and period_in[t] != item_in[i]:
                    period_in[t] = True
                    item_in[i] = True
                    grown = True
    return np.nonzero(period_in)[0], np.nonzero(item_in)[0]


@njit
def _linked_window(prices, quantities, start, stop):
    """The window's linked periods (positions in the window) and its linked items' prices,
    quantities and expenditure shares, 0 where an item is absent."""
    rows, columns = _linked(prices[start:stop])
    p = np.zeros((rows.size, columns.size))
    q = np.zeros((rows.size, columns.size))
    shares = np.zeros((rows.size, columns.size))
    for r in range(rows.size):
        total = 0.0
        for c in range(columns.size):
            price = prices[start + rows[r], columns[c]]
            if np.isfinite(price):
                p[r, c] = price
                q[r, c] = quantities[start + rows[r], columns[c]]
                total += price * q[r, c]
        for c in range(columns.size):
            shares[r, c] = p[r, c] * q[r, c] / total
    return rows, p, q, shares


@njit
def _stationary(flow):
    """``z`` with ``z[0] = 1`` and ``z[t] sum_u flow[u, t] = sum_u flow[t, u] z[u]`` for every
    node t (sums over u != t): the stationary distribution, up to scale, of the chain that
    moves from u to t with probability ``flow[t, u]``.

    ``flow`` is non-negative and joins every node; its diagonal is neither read nor kept.
    Nodes are eliminated last to first, each pivot summed from the flows that remain
    instead of subtracted (Grassmann, Taksar and Heyman 1985), so no precision is lost to
    cancellation.
    """
    n = flow.shape[0]
    flow = flow.copy()
    pivot = np.empty(n)
    for k in range(n - 1, 0, -1):
        total = 0.0
        for j in range(k):
            total += flow[j, k]
        pivot[k] = total
        for i in range(k):
            share = flow[i, k] / total
            if share > 0.0:
                for j in range(k):
                    flow[i, j] += share * flow[k, j]
    z = np.empty(n)
    z[0] = 1.0
    for k in range(1, n):
        total = 0.0
        for j in range(k):
            total += flow[k, j] * z[j]
        z[k] = total / pivot[k]
    return z


@njit
def _fit_differences(weights, offsets):
    """``b`` with ``b[0] = 0`` minimising ``sum_{i<j} weights[i, j] (b_i - b_j - e_ij)^2``,
    ``e_ij = offsets[i, j] / weights[i, j]``.

    ``weights`` is symmetric, non-negative and joins every node, ``offsets`` antisymmetric;
    diagonals are neither read nor kept. Each node is eliminated by joining its neighbours
    pairwise (weight w_ik w_kj / d_k, difference e_ik + e_kj, d_k the node's total weight),
    so every pair keeps its own weighted mean difference and no sum mixes strong and weak
    links.
    """
    n = weights.shape[0]
    weights = weights.copy()
    offsets = offsets.copy()
    pivot = np.empty(n)
    for k in range(n - 1, 0, -1):
        total = 0.0
        for j in range(k):
            total += weights[k, j]
        pivot[k] = total
        for i in range(k):
            weight = weights[i, k] / total
            offset = offsets[i, k] / total
            if weight > 0.0:
                for j in range(k):
                    weights[i, j] += weight * weights[k, j]
                    offsets[i, j] += offset * weights[k, j] + weight * offsets[k, j]
    b = np.empty(n)
    b[0] = 0.0
    for k in range(1, n):
        total = 0.0
        for j in range(k):
            total += weights[k, j] * b[j] + offsets[k, j]
        b[k] = total / pivot[k]
    return b


@njit
def gk_levels(prices, quantities, start, stop):
    """Geary-Khamis over periods ``start .. stop - 1``.

    P(t) = sum_i p_ti q_ti / sum_i v_i q_ti with v_i = sum_t q_ti p_ti / P(t) / sum_t q_ti.
    z_i = v_i sum_t q_ti is the stationary distribution of the chain that goes from item j
    to period t with probability q_tj / sum_t q_tj and from period t to item i with
    probability s_ti, item i's expenditure share in t.
    """
    out = np.full(stop - start, np.nan)
    rows, p, q, shares = _linked_window(prices, quantities, start, stop)
    items = p.shape[1]
    totals = np.zeros(items)
    for r in range(rows.size):
        totals += q[r]
    flow = np.zeros((items, items))
    for r in range(rows.size):
        for i in range(items):
            for j in range(items):
                flow[i, j] += shares[r, i] * q[r, j] / totals[j]
    z = _stationary(flow)
    for r in range(rows.size):
        value = 0.0
        volume = 0.0
        for i in range(items):
            value += p[r, i] * q[r, i]
            volume += q[r, i] * z[i] / totals[i]
        out[rows[r]] = value / volume
    return out / out[0]


@njit
def wtpd_levels(prices, quantities, start, stop):
    """Weighted time-product-dummy over periods ``start .. stop - 1``.

    ln p_ti = a_t + b_i fitted by least squares weighted by expenditure shares s_ti;
    P(t) = exp(a_t - a_first). Given b, a_t = sum_i s_ti (ln p_ti - b_i); b minimises
    sum_{i<j} w_ij (b_i - b_j - e_ij)^2 with w_ij = sum_t s_ti s_tj and e_ij the mean of
    ln p_ti - ln p_tj weighted by s_ti s_tj.
    """
    out = np.full(stop - start, np.nan)
    rows, p, _, shares = _linked_window(prices, quantities, start, stop)
    items = p.shape[1]
    logs = np.zeros(p.shape)
    for r in range(rows.size):
        for i in range(items):
            if shares[r, i] > 0.0:
                logs[r, i] = np.log(p[r, i])
    weights = np.zeros((items, items))
    offsets = np.zeros((items, items))
    for r in range(rows.size):
        for i in range(items):
            for j in range(items):
                weight = shares[r, i] * shares[r, j]
                if weight > 0.0:
                    weights[i, j] += weight
                    offsets[i, j] += weight * (logs[r, i] - logs[r, j])
    b = _fit_differences(weights, offsets)
    first = 0.0
    for r in range(rows.size):
        a = 0.0
        for i in range(items):
            a += shares[r, i] * (logs[r, i] - b[i])
        if r == 0:
            first = a
        out[rows[r]] = np.exp(a - first)
    return out


@njit
def _levels(method, prices, quantities, log_pairs, start, stop):
    if method == GEKS:
        return geks_levels(log_pairs, start, stop)
    if method == GK:
        return gk_levels(prices, quantities, start, stop)
    return wtpd_levels(prices, quantities, start, stop)


@njit
def fixed_base(latest, window):
    """FBEW/FBMW: the base for period ``latest``, the last before it of the periods
    0, window - 1, 2 (window - 1), …"""
    return (latest - 1) // (window - 1) * (window - 1)


@njit
def _window_start(latest, window, splice):
    """First period of the window that gives period ``latest`` (after the first window)."""
    if splice == FBEW:
        return fixed_base(latest, window)
    return latest - window + 1


def _windows(method, prices, quantities, log_pairs, window, splice):
    """Row 0: the first window's levels; row j: those of the window ending at period
    ``window - 1 + j`` (a window FBEW shortens is NaN after its last period)."""
    steps = prices.shape[0] - window + 1
    out = np.full((steps, window), np.nan)
    for j in numba.prange(steps):
        latest = window - 1 + j
        start = 0 if j == 0 else _window_start(latest, window, splice)
        levels = _levels(method, prices, quantities, log_pairs, start, latest + 1)
        out[j, : levels.size] = levels
    return out


windows = njit_parallel(_windows)
windows_serial = njit(_windows)
"""``windows`` on one thread."""


@njit
def _splice_factor(old, new, overlap):
    # ``overlap`` is a position in the new window; the same period sits one later in the old.
    last = new.size - 1
    return (new[last] / new[overlap]) / (old[last] / old[overlap + 1])


@njit
def extend(levels, window, splice):
    """The series: the first window's levels, then each later period from its window
    (``windows``), linked on by ``splice``."""
    steps = levels.shape[0]
    out = np.empty(steps + window - 1)
    out[:window] = levels[0]
    if splice == MOVEMENT:
        overlap = window - 2
    elif splice in (HALF, HASP):
        overlap = (window - 1) // 2
    else:
        overlap = 0
    last = window - 1
    for j in range(1, steps):
        latest = j + last
        new = levels[j]
        if splice in (FBEW, FBMW):
            base = fixed_base(latest, window)
            start = _window_start(latest, window, splice)
            out[latest] = out[base] * new[latest - start] / new[base - start]
        elif splice in (WISP, HASP):
            out[latest] = out[j + overlap] * new[last] / new[overlap]
        elif splice == MEAN_PUBLISHED:
            log_total = 0.0
            for k in range(last):
                log_total += np.log(out[j + k] * new[last] / new[k])
            out[latest] = np.exp(log_total / last)
        elif splice == MEAN:
            log_total = 0.0
            for k in range(last):
                log_total += np.log(_splice_factor(levels[j - 1], new, k))
            out[latest] = out[latest - 1] * np.exp(log_total / last)
        else:
            out[latest] = out[latest - 1] * _splice_factor(levels[j - 1], new, overlap)
    return out
