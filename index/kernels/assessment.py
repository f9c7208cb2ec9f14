"""Daily assessment kernel: per (commodity, day) group, VWAP and its companions."""

from __future__ import annotations

import numpy as np
from numba import prange

from index.jit import njit_parallel


@njit_parallel
def group_statistics(group_starts, price, quantity, exchange, n_exchanges):
    """Statistics of each group ``[group_starts[g], group_starts[g + 1])``.

    ``group_starts`` has one more entry than there are groups (the last is the length).
    ``exchange`` holds dense ids in ``[0, n_exchanges)``. Each group writes only its own
    output slot, so the parallel loop needs no merging.
    """
    n_groups = group_starts.size - 1
    vwap = np.empty(n_groups)
    volume = np.empty(n_groups)
    high = np.empty(n_groups)
    low = np.empty(n_groups)
    trades = np.empty(n_groups, dtype=np.int64)
    exchanges = np.empty(n_groups, dtype=np.int64)
    for g in prange(n_groups):
        first, last = group_starts[g], group_starts[g + 1]
        seen = np.zeros(n_exchanges, dtype=np.bool_)
        value = 0.0
        total = 0.0
        hi = -np.inf
        lo = np.inf
        distinct = 0
        for k in range(first, last):
            value += price[k] * quantity[k]
            total += quantity[k]
            hi = max(hi, price[k])
            lo = min(lo, price[k])
            if not seen[exchange[k]]:
                seen[exchange[k]] = True
                distinct += 1
        vwap[g] = value / total
        volume[g] = total
        high[g] = hi
        low[g] = lo
        trades[g] = last - first
        exchanges[g] = distinct
    return vwap, trades, volume, high, low, exchanges
