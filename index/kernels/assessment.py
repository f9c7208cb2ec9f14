"""Assessment kernels over trades sorted by (commodity, time).

A group is one commodity's trades in one assessment window. Per group: the lot filter,
the arm's-length rule, the outlier exclusion (volume-weighted mean and population SD in two
exact passes, or the median and scaled MAD; either spread floored at a fraction of the
centre), the VWAP of the qualifying trades with its companions, and the
sufficiency tests. Each group's arithmetic runs in the sorted order on one thread, so the
results do not depend on the number of threads.

The inputs are checked in the passes that read them anyway: every trade in a window while
it is assessed, every trade outside the windows while the windows are located. A check
that fails sets a bit in the returned ``problems``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from index.jit import njit, njit_parallel
from index.kernels.selection import median_in_place

LANES = 4

USED = 0
BELOW_MIN_LOT = 1
OUTLIER = 2
OUTSIDE_WINDOWS = 3
AFFILIATED = 4

EXCLUSION_SIGMA = 0
EXCLUSION_MAD = 1

# Bits of ``shortfall``: the sufficiency tests a window failed.
SHORT_TRADES = 1
SHORT_VOLUME = 2
SHORT_EXCHANGES = 4
SHARE_ABOVE_CAP = 8
PARTICIPANT_ABOVE_CAP = 16

# Bits of ``problems``: what is wrong with the inputs.
BAD_PRICE = 1
BAD_QUANTITY = 2
BAD_COMMODITY = 4
BAD_EXCHANGE = 8
UNSORTED = 16


@njit
def _check(j, c, commodity, time, price, quantity, exchange, limits, after, through):
    """Problems of trade j, expected in commodity c with ``after < time <= through``;
    ``limits`` is (number of exchange slots, number of commodities)."""
    bad = 0
    p = price[j]
    q = quantity[j]
    if not (p > 0.0 and p < np.inf):
        bad |= BAD_PRICE
    if not (q > 0.0 and q < np.inf):
        bad |= BAD_QUANTITY
    if commodity[j] != c:
        # An id out of range is wrong; one in range but here means the trades are unsorted.
        n_commodities = limits[1]
        bad |= BAD_COMMODITY if not 0 <= commodity[j] < n_commodities else UNSORTED
    e = exchange[j]
    if e < 0 or e >= limits[0]:
        bad |= BAD_EXCHANGE
    t = time[j]
    if t <= after or t > through:
        bad |= UNSORTED
    return bad


@njit_parallel
def window_bounds(segment_starts, commodity, time, price, quantity, exchange, n_exchanges, closes):
    """(bounds, problems). ``bounds[c, j]``: position of commodity c's first trade after
    ``closes[c, j]``.

    Commodity c's trades sit at ``[segment_starts[c], segment_starts[c + 1])`` sorted by
    time; window j ≥ 1 is ``[bounds[c, j - 1], bounds[c, j])``. The trades before the first
    window and after the last are checked here, the others by :func:`assess_groups`.
    """
    n_commodities, n_closes = closes.shape
    limits = (n_exchanges, n_commodities)
    bounds = np.empty((n_commodities, n_closes), dtype=np.int64)
    found = np.zeros(n_commodities, dtype=np.int64)
    lowest = np.iinfo(np.int64).min
    highest = np.iinfo(np.int64).max
    for c in prange(n_commodities):
        first, stop = segment_starts[c], segment_starts[c + 1]
        segment = time[first:stop]
        for j in range(n_closes):
            bounds[c, j] = first + np.searchsorted(segment, closes[c, j], side="right")
        bad = 0
        for j in range(first, bounds[c, 0]):
            after = time[j - 1] - 1 if j > first else lowest
            bad |= _check(
                j, c, commodity, time, price, quantity, exchange, limits, after, closes[c, 0]
            )
        for j in range(bounds[c, n_closes - 1], stop):
            after = closes[c, n_closes - 1] if j == bounds[c, n_closes - 1] else time[j - 1] - 1
            bad |= _check(j, c, commodity, time, price, quantity, exchange, limits, after, highest)
        found[c] = bad
    problems = 0
    for c in range(n_commodities):
        problems |= found[c]
    return bounds, problems


@njit_parallel
def assess_groups(
    bounds,
    chunk_starts,
    closes,
    commodity,
    time,
    price,
    quantity,
    exchange,
    n_exchanges,
    min_lot,
    exclusion,
    k,
    mad_scale,
    scale_floor,
    exclude_affiliated,
    min_trades,
    min_volume,
    min_exchanges,
    max_share,
    max_participant_share,
    affiliated,
    buyer,
    seller,
    n_participants,
    flags,
    check_inputs,
):
    """Statistics of every (commodity c, window d) group, as arrays of shape (C, D), and
    the input problems found.

    ``bounds`` comes from :func:`window_bounds` (shape (C, D + 1)). Groups are numbered
    ``g = c * D + d``; ``chunk_starts`` splits them into contiguous chunks, one parallel
    task each, with its own buffers. ``exchange`` holds dense codes (uint8) below
    ``n_exchanges``.
    Per-commodity parameters are arrays of length C. ``affiliated`` (bool), ``buyer`` and
    ``seller`` (participant ids below ``n_participants``, -1 for none) are either empty or
    have one slot per trade; a commodity with ``exclude_affiliated`` drops affiliated
    trades before the exclusion. ``flags`` is either empty or has one slot per trade, which
    receives USED, BELOW_MIN_LOT, AFFILIATED or OUTLIER. With ``check_inputs``
    false the trades are taken as sound (the caller guarantees order and values) and the
    first pass reads only prices and quantities.
    """
    n_commodities = bounds.shape[0]
    n_days = bounds.shape[1] - 1
    shape = (n_commodities, n_days)
    limits = (n_exchanges, n_commodities)
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
    top_participant = np.full(shape, np.nan)
    shortfall = np.zeros(shape, dtype=np.int64)
    want_flags = flags.size > 0
    have_affiliation = affiliated.size > 0
    have_participants = buyer.size > 0
    n_chunks = chunk_starts.size - 1
    found = np.zeros(max(n_chunks, 1), dtype=np.int64)

    for chunk in prange(n_chunks):
        g_first, g_stop = chunk_starts[chunk], chunk_starts[chunk + 1]
        # Four lanes: consecutive trades of one exchange add to different slots, so no
        # addition waits for the one before; the lanes are summed in a fixed order.
        exchange_volume = np.zeros((LANES, n_exchanges))
        participant_volume = np.zeros(n_participants if have_participants else 0)
        largest = 0
        for g in range(g_first, g_stop):
            c, d = g // n_days, g % n_days
            if exclusion[c] == EXCLUSION_MAD:
                largest = max(largest, bounds[c, d + 1] - bounds[c, d])
        buffer = np.empty(largest)
        bad = 0

        for g in range(g_first, g_stop):
            c, d = g // n_days, g % n_days
            lo, hi = bounds[c, d], bounds[c, d + 1]
            lot = min_lot[c]
            arms_length = exclude_affiliated[c] and have_affiliation
            window_trades[c, d] = hi - lo
            if hi == lo:
                shortfall[c, d] = SHORT_TRADES | SHORT_VOLUME | SHORT_EXCHANGES
                continue

            # Pass 1: lot filter and volume-weighted mean, with cheap aggregates that prove
            # the inputs sound; only a group whose aggregates look wrong is checked trade by
            # trade (and then not assessed).
            opens, closes_at = closes[c, d], closes[c, d + 1]
            value = 0.0
            total = 0.0
            n_lot = 0
            if check_inputs:
                checksum = 0.0
                lowest_price = np.inf
                lowest_quantity = np.inf
                first_commodity = commodity[lo]
                other_commodities = 0
                previous = time[lo]
                smallest_step = 0
                for j in range(lo, hi):
                    p = price[j]
                    q = quantity[j]
                    t = time[j]
                    checksum += p + q
                    lowest_price = min(lowest_price, p)
                    lowest_quantity = min(lowest_quantity, q)
                    other_commodities += commodity[j] != first_commodity
                    smallest_step = min(smallest_step, t - previous)
                    previous = t
                    if q >= lot and not (arms_length and affiliated[j]):
                        value += p * q
                        total += q
                        n_lot += 1
                sound = (
                    np.isfinite(checksum)
                    and lowest_price > 0.0
                    and lowest_quantity > 0.0
                    and first_commodity == c
                    and other_commodities == 0
                    and smallest_step >= 0
                    and time[lo] > opens
                    and time[hi - 1] <= closes_at
                )
            else:
                for j in range(lo, hi):
                    q = quantity[j]
                    if q >= lot and not (arms_length and affiliated[j]):
                        value += price[j] * q
                        total += q
                        n_lot += 1
                sound = True
            if not sound:
                for j in range(lo, hi):
                    after = opens if j == lo else max(opens, time[j - 1] - 1)
                    bad |= _check(
                        j, c, commodity, time, price, quantity, exchange, limits, after, closes_at
                    )
                if bad:
                    continue
            if exclusion[c] == EXCLUSION_MAD:
                n_lot = 0
                for j in range(lo, hi):
                    if quantity[j] >= lot and not (arms_length and affiliated[j]):
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
                        if q >= lot and not (arms_length and affiliated[j]):
                            deviation = price[j] - mid
                            squares += q * (deviation * deviation)
                    spread = np.sqrt(squares / total)
                else:
                    part = buffer[:n_lot]
                    mid = median_in_place(part)
                    for i in range(n_lot):
                        part[i] = abs(part[i] - mid)
                    spread = mad_scale[c] * median_in_place(part)
                if scale_floor[c] > 0.0:
                    spread = max(spread, scale_floor[c] * abs(mid))
                center[c, d] = mid
                scale[c, d] = spread
            limit = k[c] * spread

            # Pass 3: exclusion, then the VWAP of the qualifying trades and its companions.
            # An excluded trade adds exactly zero, so the sums equal those over the
            # qualifying trades alone, without a branch per trade.
            value = 0.0
            total = 0.0
            n_used = 0
            top = -np.inf
            bottom = np.inf
            n_touched = 0
            coded = False
            for j in range(lo, hi):
                q = quantity[j]
                p = price[j]
                lot_ok = q >= lot
                eligible = lot_ok and not (arms_length and affiliated[j])
                keep = eligible and not (spread > 0.0 and abs(p - mid) > limit)
                if want_flags:
                    if keep:
                        flags[j] = USED
                    elif eligible:
                        flags[j] = OUTLIER
                    else:
                        flags[j] = AFFILIATED if lot_ok else BELOW_MIN_LOT
                w = q if keep else 0.0
                if have_participants:
                    if buyer[j] >= 0:
                        participant_volume[buyer[j]] += w
                    if seller[j] >= 0:
                        participant_volume[seller[j]] += w
                    coded = coded or (keep and (buyer[j] >= 0 or seller[j] >= 0))
                value += p * w
                total += w
                n_used += keep
                top = max(top, p if keep else -np.inf)
                bottom = min(bottom, p if keep else np.inf)
                exchange_volume[(j - lo) % LANES, exchange[j]] += w

            biggest = 0.0
            for i in range(n_exchanges):
                v = 0.0
                for lane in range(LANES):
                    v += exchange_volume[lane, i]
                    exchange_volume[lane, i] = 0.0
                if v > 0.0:
                    n_touched += 1
                    biggest = max(biggest, v)
            most = 0.0
            if have_participants:
                for j in range(lo, hi):
                    most = max(most, participant_volume[buyer[j]] if buyer[j] >= 0 else 0.0)
                    most = max(most, participant_volume[seller[j]] if seller[j] >= 0 else 0.0)
                for j in range(lo, hi):
                    if buyer[j] >= 0:
                        participant_volume[buyer[j]] = 0.0
                    if seller[j] >= 0:
                        participant_volume[seller[j]] = 0.0
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
                if coded:
                    top_participant[c, d] = most / total
                    if most / total > max_participant_share[c]:
                        missing |= PARTICIPANT_ABOVE_CAP
            if n_used < min_trades[c]:
                missing |= SHORT_TRADES
            if total < min_volume[c] or n_used == 0:
                missing |= SHORT_VOLUME
            if n_touched < min_exchanges[c]:
                missing |= SHORT_EXCHANGES
            shortfall[c, d] = missing
        found[chunk] = bad

    problems = 0
    for chunk in range(found.size):
        problems |= found[chunk]
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
        top_participant,
        shortfall,
        problems,
    )
