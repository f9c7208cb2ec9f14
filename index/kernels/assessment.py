"""Assessment kernels over trades sorted by (commodity, time).

A group is one commodity's trades in one assessment window. Per group: the lot filter,
the outlier exclusion (volume-weighted mean and population SD in two exact passes, or the
median and scaled MAD), the VWAP of the qualifying trades with its companions, and the
sufficiency tests. Each group's arithmetic runs in the sorted order on one thread, so the
results do not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from index.jit import njit, njit_parallel

USED = 0
BELOW_MIN_LOT = 1
OUTLIER = 2
OUTSIDE_WINDOWS = 3

EXCLUSION_SIGMA = 0
EXCLUSION_MAD = 1

# Bits of ``shortfall``: the sufficiency tests a window failed.
SHORT_TRADES = 1
SHORT_VOLUME = 2
SHORT_EXCHANGES = 4
SHARE_ABOVE_CAP = 8


BAD_PRICE = 1
BAD_QUANTITY = 2
BAD_COMMODITY = 4
BAD_EXCHANGE = 8
UNSORTED = 16


@njit_parallel
def validate(commodity, time, price, quantity, exchange, n_commodities, max_exchange, presorted):
    """One parallel pass over every input: (bit set of the problems found, largest exchange id).

    Prices and quantities must be finite and > 0; commodity ids in ``[0, n_commodities)``;
    exchange ids in ``[0, max_exchange]``; with ``presorted``, the trades sorted by
    (commodity, time).
    """
    n = price.size
    n_chunks = min(n, 64)
    found = np.zeros(max(n_chunks, 1), dtype=np.int64)
    highest = np.zeros(max(n_chunks, 1), dtype=np.int64)
    for chunk in prange(n_chunks):
        lo = chunk * n // n_chunks
        hi = (chunk + 1) * n // n_chunks
        prices_ok = True
        quantities_ok = True
        commodities_ok = True
        exchanges_ok = True
        sorted_ok = True
        top = 0
        for j in range(lo, hi):
            p = price[j]
            q = quantity[j]
            c = commodity[j]
            e = exchange[j]
            prices_ok &= (p > 0.0) & (p < np.inf)
            quantities_ok &= (q > 0.0) & (q < np.inf)
            commodities_ok &= (c >= 0) & (c < n_commodities)
            exchanges_ok &= (e >= 0) & (e <= max_exchange)
            top = max(top, e)
        if presorted:
            for j in range(max(lo, 1), hi):
                before, c = commodity[j - 1], commodity[j]
                sorted_ok &= (before < c) | ((before == c) & (time[j - 1] <= time[j]))
        found[chunk] = (
            (0 if prices_ok else BAD_PRICE)
            | (0 if quantities_ok else BAD_QUANTITY)
            | (0 if commodities_ok else BAD_COMMODITY)
            | (0 if exchanges_ok else BAD_EXCHANGE)
            | (0 if sorted_ok else UNSORTED)
        )
        highest[chunk] = top
    result = 0
    for chunk in range(found.size):
        result |= found[chunk]
    return result, highest.max()


@njit_parallel
def window_bounds(segment_starts, time, closes):
    """``bounds[c, j]``: position of commodity c's first trade after ``closes[c, j]``.

    Commodity c's trades sit at ``[segment_starts[c], segment_starts[c + 1])`` sorted by
    time; window j ≥ 1 is ``[bounds[c, j - 1], bounds[c, j])``.
    """
    n_commodities, n_closes = closes.shape
    bounds = np.empty((n_commodities, n_closes), dtype=np.int64)
    for c in prange(n_commodities):
        first, stop = segment_starts[c], segment_starts[c + 1]
        segment = time[first:stop]
        for j in range(n_closes):
            bounds[c, j] = first + np.searchsorted(segment, closes[c, j], side="right")
    return bounds


@njit
def _median_of_sorted(values, n):
    half = n // 2
    if n % 2 == 1:
        return values[half]
    return (values[half - 1] + values[half]) / 2.0


@njit_parallel
def assess_groups(
    bounds,
    chunk_starts,
    price,
    quantity,
    exchange,
    n_exchanges,
    min_lot,
    exclusion,
    k,
    mad_scale,
    min_trades,
    min_volume,
    min_exchanges,
    max_share,
    flags,
):
    """Statistics of every (commodity c, window d) group, as arrays of shape (C, D).

    ``bounds`` comes from :func:`window_bounds` (shape (C, D + 1)). Groups are numbered
    ``g = c * D + d``; ``chunk_starts`` splits them into contiguous chunks, one parallel
    task each, with its own buffers. ``exchange`` holds ids in ``[0, n_exchanges)``.
    Per-commodity parameters are arrays of length C. ``flags`` is either empty or has one
    slot per trade, which receives USED, BELOW_MIN_LOT or OUTLIER.
    """
    n_commodities = bounds.shape[0]
    n_days = bounds.shape[1] - 1
    shape = (n_commodities, n_days)
    window_trades = np.zeros(shape, dtype=np.int64)
    lot_trades = np.zeros(shape, dtype=np.int64)
    center = np.full(shape, np.nan)
    scale = np.full(shape, np.nan)
    trades = np.zeros(shape, dtype=np.int64)
    volume = np.zeros(shape)
    vwap = np.full(shape, np.nan)
    high = np.full(shape, np.nan)
    low = np.full(shape, np.nan)
    exchanges = np.zeros(shape, dtype=np.int64)
    top_share = np.full(shape, np.nan)
    shortfall = np.zeros(shape, dtype=np.int64)
    want_flags = flags.size > 0

    for chunk in prange(chunk_starts.size - 1):
        g_first, g_stop = chunk_starts[chunk], chunk_starts[chunk + 1]
        exchange_volume = np.zeros(n_exchanges)
        touched = np.empty(n_exchanges, dtype=np.int64)
        largest = 0
        for g in range(g_first, g_stop):
            c, d = g // n_days, g % n_days
            largest = max(largest, bounds[c, d + 1] - bounds[c, d])
        buffer = np.empty(largest)

        for g in range(g_first, g_stop):
            c, d = g // n_days, g % n_days
            lo, hi = bounds[c, d], bounds[c, d + 1]
            lot = min_lot[c]
            window_trades[c, d] = hi - lo

            # Pass 1: lot filter; volume-weighted mean (or the prices, for the median).
            value = 0.0
            total = 0.0
            n_lot = 0
            for j in range(lo, hi):
                q = quantity[j]
                if q >= lot:
                    if exclusion[c] == EXCLUSION_SIGMA:
                        value += price[j] * q
                        total += q
                    else:
                        buffer[n_lot] = price[j]
                    n_lot += 1
            lot_trades[c, d] = n_lot

            mid = np.nan
            spread = 0.0
            if n_lot > 0:
                if exclusion[c] == EXCLUSION_SIGMA:
                    # Pass 2: volume-weighted population variance about the mean.
                    mid = value / total
                    squares = 0.0
                    for j in range(lo, hi):
                        q = quantity[j]
                        if q >= lot:
                            deviation = price[j] - mid
                            squares += q * (deviation * deviation)
                    spread = np.sqrt(squares / total)
                else:
                    part = buffer[:n_lot]
                    part.sort()
                    mid = _median_of_sorted(part, n_lot)
                    for i in range(n_lot):
                        part[i] = abs(part[i] - mid)
                    part.sort()
                    spread = mad_scale[c] * _median_of_sorted(part, n_lot)
            if n_lot > 0:
                center[c, d] = mid
                scale[c, d] = spread
            limit = k[c] * spread

            # Pass 3: exclusion, then the VWAP of the qualifying trades and its companions.
            value = 0.0
            total = 0.0
            n_used = 0
            top = -np.inf
            bottom = np.inf
            n_touched = 0
            for j in range(lo, hi):
                q = quantity[j]
                if q < lot:
                    if want_flags:
                        flags[j] = BELOW_MIN_LOT
                    continue
                p = price[j]
                if spread > 0.0 and abs(p - mid) > limit:
                    if want_flags:
                        flags[j] = OUTLIER
                    continue
                if want_flags:
                    flags[j] = USED
                value += p * q
                total += q
                n_used += 1
                top = max(top, p)
                bottom = min(bottom, p)
                e = exchange[j]
                if exchange_volume[e] == 0.0:
                    touched[n_touched] = e
                    n_touched += 1
                exchange_volume[e] += q

            biggest = 0.0
            for i in range(n_touched):
                biggest = max(biggest, exchange_volume[touched[i]])
                exchange_volume[touched[i]] = 0.0
            trades[c, d] = n_used
            volume[c, d] = total
            exchanges[c, d] = n_touched
            missing = 0
            if n_used > 0:
                vwap[c, d] = value / total
                high[c, d] = top
                low[c, d] = bottom
                top_share[c, d] = biggest / total
                if biggest / total > max_share[c]:
                    missing |= SHARE_ABOVE_CAP
            if n_used < min_trades[c]:
                missing |= SHORT_TRADES
            if total < min_volume[c] or n_used == 0:
                missing |= SHORT_VOLUME
            if n_touched < min_exchanges[c]:
                missing |= SHORT_EXCHANGES
            shortfall[c, d] = missing

    return (
        window_trades,
        lot_trades,
        center,
        scale,
        trades,
        volume,
        vwap,
        high,
        low,
        exchanges,
        top_share,
        shortfall,
    )
