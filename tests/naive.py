"""Slow, obvious reference implementations of every statistic and formula.

Plain Python loops over lists, written to be read, not to be fast. Tests compare the
Numba kernels and the services against these; nothing here imports the code under test.
"""

from __future__ import annotations

import math
from collections import defaultdict


def daily_vwap(commodity, day, price, quantity):
    """Per (commodity, day): VWAP, count, volume, high, low, as a dict keyed by the pair."""
    groups = defaultdict(list)
    for c, d, p, q in zip(commodity, day, price, quantity, strict=True):
        groups[(int(c), int(d))].append((float(p), float(q)))
    out = {}
    for key, rows in groups.items():
        volume = math.fsum(q for _, q in rows)
        value = math.fsum(p * q for p, q in rows)
        out[key] = {
            "vwap": value / volume,
            "trades": len(rows),
            "volume": volume,
            "high": max(p for p, _ in rows),
            "low": min(p for p, _ in rows),
        }
    return out


# Price index formulas. Prices and quantities are dicts {period: {item: value}}; each
# comparison of two periods uses the items priced in both. A comparison with no such item,
# and everything built from it, is NaN internally and None in the returned dicts.


def bilateral_index(formula, prices0, quantities0, prices1, quantities1):
    """Index of period 1 against period 0 (dicts {item: value}) by the named formula."""
    items = sorted(set(prices0) & set(prices1))
    if not items:
        return math.nan
    p0 = [prices0[i] for i in items]
    p1 = [prices1[i] for i in items]
    q0 = [quantities0[i] for i in items]
    q1 = [quantities1[i] for i in items]
    relatives = [b / a for a, b in zip(p0, p1, strict=True)]
    n = len(items)

    def laspeyres():
        return math.fsum(b * q for b, q in zip(p1, q0, strict=True)) / math.fsum(
            a * q for a, q in zip(p0, q0, strict=True)
        )

    def paasche():
        return math.fsum(b * q for b, q in zip(p1, q1, strict=True)) / math.fsum(
            a * q for a, q in zip(p0, q1, strict=True)
        )

    if formula == "laspeyres":
        return laspeyres()
    if formula == "paasche":
        return paasche()
    if formula == "fisher":
        return math.sqrt(laspeyres() * paasche())
    if formula == "tornqvist":
        value0 = math.fsum(a * q for a, q in zip(p0, q0, strict=True))
        value1 = math.fsum(b * q for b, q in zip(p1, q1, strict=True))
        result = 1.0
        for k in range(n):
            share0 = p0[k] * q0[k] / value0
            share1 = p1[k] * q1[k] / value1
            result *= relatives[k] ** ((share0 + share1) / 2)
        return result
    if formula == "walsh":
        weights = [math.sqrt(a * b) for a, b in zip(q0, q1, strict=True)]
        return math.fsum(b * w for b, w in zip(p1, weights, strict=True)) / math.fsum(
            a * w for a, w in zip(p0, weights, strict=True)
        )
    if formula == "jevons":
        return math.prod(relatives) ** (1 / n)
    if formula == "dutot":
        return (math.fsum(p1) / n) / (math.fsum(p0) / n)
    if formula == "carli":
        return math.fsum(relatives) / n
    raise ValueError(formula)


def _none_for_nan(series):
    return {period: (None if math.isnan(value) else value) for period, value in series.items()}


def fixed_base_index(formula, prices, quantities, base):
    """{period: index against ``base`` directly}."""
    return _none_for_nan(
        {
            t: bilateral_index(formula, prices[base], quantities[base], prices[t], quantities[t])
            for t in sorted(prices)
        }
    )


def chained_index(formula, prices, quantities, base):
    """{period: product of period-to-period links between ``base`` and it}."""
    periods = sorted(prices)

    def link(earlier, later):
        return bilateral_index(
            formula, prices[earlier], quantities[earlier], prices[later], quantities[later]
        )

    b = periods.index(base)
    series = {base: 1.0}
    for k in range(b + 1, len(periods)):
        series[periods[k]] = series[periods[k - 1]] * link(periods[k - 1], periods[k])
    for k in range(b - 1, -1, -1):
        series[periods[k]] = series[periods[k + 1]] / link(periods[k], periods[k + 1])
    return _none_for_nan({t: series[t] for t in periods})


def geks_index(formula, prices, quantities, window, splice="movement"):
    """GEKS over a rolling window of ``window`` periods, later periods spliced on.

    Within a window starting at period s, P(s, t) = prod_k [P(s, k) P(k, t)] ** (1 / W),
    rebased to 1 at s. Each later period T comes from the window ending at T, linked to
    the series at an overlap period k: series[T-1] * (new[T] / new[k]) / (old[T-1] / old[k]),
    with k = T-1 (movement), the new window's first period (window), its middle period
    (half), or the geometric mean over all overlap periods (mean).
    """
    periods = sorted(prices)

    def pair(a, b):
        return bilateral_index(formula, prices[a], quantities[a], prices[b], quantities[b])

    def window_levels(start):
        span = periods[start : start + window]
        levels = {
            t: math.prod((pair(span[0], k) * pair(k, t)) ** (1 / window) for k in span)
            for t in span
        }
        return {t: levels[t] / levels[span[0]] for t in span}

    old = window_levels(0)
    series = dict(old)
    for start in range(1, len(periods) - window + 1):
        new = window_levels(start)
        latest, previous = periods[start + window - 1], periods[start + window - 2]
        overlap = periods[start : start + window - 1]

        def linked(k, new=new, old=old, latest=latest, previous=previous):
            return series[previous] * (new[latest] / new[k]) / (old[previous] / old[k])

        if splice == "movement":
            series[latest] = linked(previous)
        elif splice == "window":
            series[latest] = linked(overlap[0])
        elif splice == "half":
            series[latest] = linked(overlap[(window - 1) // 2])
        elif splice == "mean":
            series[latest] = math.prod(linked(k) for k in overlap) ** (1 / len(overlap))
        else:
            raise ValueError(splice)
        old = new
    return _none_for_nan(series)


# Assessment windows. A rule is a dict with min_lot, exclusion ("sigma" or "mad"), k,
# mad_scale, min_trades, min_volume, min_exchanges, max_exchange_share.


def _median(values):
    ordered = sorted(values)
    n = len(ordered)
    if n % 2:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2.0


def assess_window(trades, rule):
    """One window's assessment; ``trades`` are (price, quantity, exchange) tuples.

    Returns the statistics and, per trade, "used", "min_lot" or "outlier".
    """
    lot = [(p, q, e) for p, q, e in trades if q >= rule["min_lot"]]
    center = scale = math.nan
    if lot:
        if rule["exclusion"] == "sigma":
            total = math.fsum(q for _, q, _ in lot)
            center = math.fsum(p * q for p, q, _ in lot) / total
            variance = math.fsum(q * (p - center) ** 2 for p, q, _ in lot) / total
            scale = math.sqrt(variance)
        else:
            center = _median([p for p, _, _ in lot])
            scale = rule["mad_scale"] * _median([abs(p - center) for p, _, _ in lot])
    verdicts = []
    for p, q, _ in trades:
        if q < rule["min_lot"]:
            verdicts.append("min_lot")
        elif scale > 0 and abs(p - center) > rule["k"] * scale:
            verdicts.append("outlier")
        else:
            verdicts.append("used")
    used = [t for t, v in zip(trades, verdicts, strict=True) if v == "used"]
    volume = math.fsum(q for _, q, _ in used)
    by_exchange = defaultdict(list)
    for _, q, e in used:
        by_exchange[e].append(q)
    top_share = max(math.fsum(v) for v in by_exchange.values()) / volume if used else math.nan
    failed = set()
    if len(used) < rule["min_trades"]:
        failed.add("min_trades")
    if not used or volume < rule["min_volume"]:
        failed.add("min_volume")
    if len(by_exchange) < rule["min_exchanges"]:
        failed.add("min_exchanges")
    if used and top_share > rule["max_exchange_share"]:
        failed.add("max_exchange_share")
    return {
        "window_trades": len(trades),
        "lot_trades": len(lot),
        "center": center,
        "scale": scale,
        "trades": len(used),
        "volume": volume,
        "vwap": math.fsum(p * q for p, q, _ in used) / volume if used else math.nan,
        "high": max(p for p, _, _ in used) if used else math.nan,
        "low": min(p for p, _, _ in used) if used else math.nan,
        "exchanges": len(by_exchange),
        "top_share": top_share,
        "failed": failed,
        "verdicts": verdicts,
    }


def assess_all(commodity, time, price, quantity, exchange, closes, rules):
    """{(commodity, window): assess_window(...)} for every window j >= 1 of ``closes[c]``.

    Window j of commodity c holds the trades with closes[c][j - 1] < time <= closes[c][j];
    trades are taken in order of (time, price, quantity, exchange).
    """
    rows = sorted(zip(commodity, time, price, quantity, exchange, strict=True))
    out = {}
    for c, cutoffs in enumerate(closes):
        for j in range(1, len(cutoffs)):
            window = [
                (p, q, e) for cc, t, p, q, e in rows if cc == c and cutoffs[j - 1] < t <= cutoffs[j]
            ]
            out[(c, j - 1)] = assess_window(window, rules[c])
    return out


# Index levels and weights.


def chain_linked_index(days, levels, weight_sets, base_day, base_value):
    """{day: value}: chain-linked Laspeyres by its definition, one day at a time.

    ``levels`` is {day: {item: level}} (an item missing on a day keeps its last level);
    ``weight_sets`` is {effective_from: {item: weight}}. A period begins on the base day,
    on each 1 January after it and on each weight set's effective date; within it
    value(t) = value(r) × Σ w_i × level_i(t) / level_i(r), with r the last day before the
    period (the base day for the first period, whose value is ``base_value``).
    """
    days = sorted(d for d in days if d >= base_day)
    filled, last = {}, {}
    for day in sorted(levels):
        last.update(levels[day])
        filled[day] = dict(last)
    starts = {base_day}
    starts |= {type(base_day)(y, 1, 1) for y in range(base_day.year + 1, days[-1].year + 1)}
    starts |= {d for d in weight_sets if base_day < d <= days[-1]}

    def period_start(day):
        return max(s for s in starts if s <= day)

    def weights(start):
        return weight_sets[max(d for d in weight_sets if d <= max(start, base_day))]

    values = {}
    for day in days:
        start = period_start(day)
        if start == base_day:
            reference, constant = base_day, base_value
        else:
            reference = max(d for d in days if d < start)
            constant = values[reference]
        w = weights(start)
        values[day] = constant * math.fsum(w[i] * filled[day][i] / filled[reference][i] for i in w)
    return values


def capped_weights(targets, sectors, commodity_cap, sector_cap, floor):
    """Weights w_i = clip(a × t_i, floor, cap), a common factor a for every sector except
    those that would exceed the sector cap, which get the factor that makes them sum to
    it; a is the factor that makes all weights sum to 1. Each factor found by bisection.
    """

    def clipped(items, factor):
        return [min(max(targets[i] * factor, floor), commodity_cap) for i in items]

    def solve(items, total):
        lo, hi = 0.0, 1.0
        while math.fsum(clipped(items, hi)) < total and hi < 1e300:
            hi *= 2
        for _ in range(2000):
            mid = (lo + hi) / 2
            if mid in (lo, hi):
                break
            if math.fsum(clipped(items, mid)) < total:
                lo = mid
            else:
                hi = mid
        return hi

    names = sorted(set(sectors))
    everyone = range(len(targets))

    def sector_total(name, factor):
        return math.fsum(clipped([i for i in everyone if sectors[i] == name], factor))

    def total(factor):
        return math.fsum(min(sector_total(name, factor), sector_cap) for name in names)

    lo, hi = 0.0, 1.0
    while total(hi) < 1.0 and hi < 1e300:
        hi *= 2
    for _ in range(2000):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if total(mid) < 1.0:
            lo = mid
        else:
            hi = mid
    factor = hi
    weights = [0.0] * len(targets)
    for name in names:
        members = [i for i in everyone if sectors[i] == name]
        own = factor
        if sector_total(name, factor) > sector_cap:
            own = solve(members, sector_cap)
        for i, w in zip(members, clipped(members, own), strict=True):
            weights[i] = w
    return weights
