"""Slow, obvious reference implementations of every statistic and formula.

Plain Python loops over lists, written to be read, not to be fast. Tests compare the
Numba kernels and the services against these; nothing here imports the code under test.
"""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction


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


# Multilateral indices over one window: ``span`` is the window's periods in order, the
# result {period: level}, 1 in the window's first period (NaN where undefined). Geary-Khamis
# and WTPD solve their defining equations exactly, in rational arithmetic, over the periods
# joined to the window's first by items priced in common (directly or through other
# periods); every other period is NaN.


def geks_window(formula, prices, quantities, span):
    """P(s, t) = prod over the window of [P(s, k) P(k, t)] ** (1 / W), rebased to 1 at s."""

    def pair(a, b):
        return bilateral_index(formula, prices[a], quantities[a], prices[b], quantities[b])

    levels = {
        t: math.prod((pair(span[0], k) * pair(k, t)) ** (1 / len(span)) for k in span) for t in span
    }
    return {t: levels[t] / levels[span[0]] for t in span}


def _linked_periods(prices, span):
    linked, items = [span[0]], set(prices[span[0]])
    grown = True
    while grown:
        grown = False
        for t in span:
            if t not in linked and items & set(prices[t]):
                linked.append(t)
                items |= set(prices[t])
                grown = True
    return [t for t in span if t in linked], sorted(items)


def _solve_exactly(matrix, rhs):
    """Gaussian elimination in fractions; ``matrix`` must be non-singular."""
    n = len(rhs)
    rows = [[*row, value] for row, value in zip(matrix, rhs, strict=True)]
    for column in range(n):
        pivot = next(r for r in range(column, n) if rows[r][column] != 0)
        rows[column], rows[pivot] = rows[pivot], rows[column]
        for r in range(n):
            if r != column and rows[r][column] != 0:
                ratio = rows[r][column] / rows[column][column]
                rows[r] = [a - ratio * b for a, b in zip(rows[r], rows[column], strict=True)]
    return [rows[r][n] / rows[r][r] for r in range(n)]


def geary_khamis_window(prices, quantities, span):
    """P(t) = sum_i p_ti q_ti / sum_i v_i q_ti, where each item's quality adjustment factor
    v_i = sum_t q_ti p_ti / P(t) / sum_t q_ti. Substituting P(t) gives linear equations in
    v, one of them redundant: it is replaced by v = 1 for the first item."""
    periods, items = _linked_periods(prices, span)
    p = {(t, i): Fraction(prices[t][i]) for t in periods for i in prices[t]}
    q = {(t, i): Fraction(quantities[t][i]) for t in periods for i in prices[t]}
    spent = {t: sum(p[t, i] * q[t, i] for i in prices[t]) for t in periods}
    matrix, rhs = [], []
    for i in items:
        # v_i sum_t q_ti - sum_t (q_ti p_ti / spent_t) sum_j v_j q_tj = 0
        row = [Fraction(0)] * len(items)
        row[items.index(i)] += sum(q[t, i] for t in periods if i in prices[t])
        for t in periods:
            if i in prices[t]:
                for j in prices[t]:
                    row[items.index(j)] -= q[t, i] * p[t, i] / spent[t] * q[t, j]
        matrix.append(row)
        rhs.append(Fraction(0))
    matrix[0] = [Fraction(1)] + [Fraction(0)] * (len(items) - 1)
    rhs[0] = Fraction(1)
    v = dict(zip(items, _solve_exactly(matrix, rhs), strict=True))
    level = {t: spent[t] / sum(v[i] * q[t, i] for i in prices[t]) for t in periods}
    return {t: float(level[t] / level[span[0]]) if t in level else math.nan for t in span}


def wtpd_window(prices, quantities, span):
    """ln p_ti = a_t + b_i fitted by least squares, each observation weighted by the item's
    expenditure share in its period; P(t) = exp(a_t), with a = 0 in the first period.
    The normal equations X'WX (a, b) = X'W ln p are solved exactly (``ln p`` as rounded)."""
    periods, items = _linked_periods(prices, span)
    names = [("a", t) for t in periods[1:]] + [("b", i) for i in items]
    observations = []
    for t in periods:
        spent = sum(Fraction(prices[t][i]) * Fraction(quantities[t][i]) for i in prices[t])
        for i in prices[t]:
            share = Fraction(prices[t][i]) * Fraction(quantities[t][i]) / spent
            regressors = {("a", t), ("b", i)} & set(names)
            observations.append((share, regressors, Fraction(math.log(prices[t][i]))))
    matrix = [[Fraction(0)] * len(names) for _ in names]
    rhs = [Fraction(0)] * len(names)
    for share, regressors, log_price in observations:
        for row in regressors:
            rhs[names.index(row)] += share * log_price
            for column in regressors:
                matrix[names.index(row)][names.index(column)] += share
    solution = dict(zip(names, _solve_exactly(matrix, rhs), strict=True))
    level = {periods[0]: 1.0} | {t: math.exp(solution["a", t]) for t in periods[1:]}
    return {t: level.get(t, math.nan) for t in span}


def extended_index(window_levels, periods, window, splice):
    """The series of a multilateral index: the first window's levels, then each later
    period T from a window ending at T. ``window_levels(span)`` gives a window's levels.

    - movement, window, half, mean: the new window holds the last ``window`` periods and is
      linked at an overlap period k: value(T-1) * [new(T) / new(k)] / [old(T-1) / old(k)],
      ``old`` the window before; k is T-1, the new window's first period, its middle one
      (position (window - 1) // 2), or the geometric mean over every overlap period;
    - wisp, hasp, mean_published: value(k) * new(T) / new(k), onto the published value at
      the new window's first period, its middle one, or the geometric mean over all;
    - fbew, fbmw: the bases are every (window - 1)th period from the first, b the last one
      before T; the new window runs from b to T (fbew) or holds the last ``window``
      periods (fbmw); value(T) = value(b) * new(T) / new(b).
    """
    series = dict(window_levels(tuple(periods[:window])))
    for end in range(window, len(periods)):
        latest, previous = periods[end], periods[end - 1]
        if splice in ("fbew", "fbmw"):
            base = max(range(0, end, window - 1))
            first = base if splice == "fbew" else end - window + 1
            new = window_levels(tuple(periods[first : end + 1]))
            series[latest] = series[periods[base]] * new[latest] / new[periods[base]]
            continue
        new = window_levels(tuple(periods[end - window + 1 : end + 1]))
        overlap = periods[end - window + 1 : end]
        chosen = {
            "movement": [previous],
            "window": overlap[:1],
            "wisp": overlap[:1],
            "half": [overlap[(window - 1) // 2]],
            "hasp": [overlap[(window - 1) // 2]],
        }.get(splice, overlap)
        if splice in ("wisp", "hasp", "mean_published"):
            links = [series[k] * new[latest] / new[k] for k in chosen]
        elif splice in ("movement", "window", "half", "mean"):
            old = window_levels(tuple(periods[end - window : end]))
            links = [
                series[previous] * (new[latest] / new[k]) / (old[previous] / old[k]) for k in chosen
            ]
        else:
            raise ValueError(splice)
        series[latest] = math.prod(links) ** (1 / len(links))
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
    """One window's assessment; ``trades`` are (price, quantity, exchange) tuples, or
    (price, quantity, exchange, buyer, seller, affiliated) with participant codes (None for
    none) that are distinct per exchange.

    Returns the statistics and, per trade, "used", "min_lot", "affiliated" or "outlier".
    """
    trades = [tuple(t) + (None, None, False)[len(t) - 3 :] for t in trades]
    arms_length = rule.get("exclude_affiliated", False)

    def eligible(t):
        return t[1] >= rule["min_lot"] and not (arms_length and t[5])

    lot = [t for t in trades if eligible(t)]
    center = scale = math.nan
    if lot:
        if rule["exclusion"] == "sigma":
            total = math.fsum(t[1] for t in lot)
            center = math.fsum(t[0] * t[1] for t in lot) / total
            variance = math.fsum(t[1] * (t[0] - center) ** 2 for t in lot) / total
            scale = math.sqrt(variance)
        else:
            center = _median([t[0] for t in lot])
            scale = rule["mad_scale"] * _median([abs(t[0] - center) for t in lot])
        scale = max(scale, rule.get("scale_floor", 0.0) * abs(center))
    verdicts = []
    for t in trades:
        if t[1] < rule["min_lot"]:
            verdicts.append("min_lot")
        elif not eligible(t):
            verdicts.append("affiliated")
        elif scale > 0 and abs(t[0] - center) > rule["k"] * scale:
            verdicts.append("outlier")
        else:
            verdicts.append("used")
    used = [t for t, v in zip(trades, verdicts, strict=True) if v == "used"]
    volume = math.fsum(t[1] for t in used)
    by_exchange = defaultdict(list)
    by_participant = defaultdict(list)
    for _, q, e, buyer, seller, _ in used:
        by_exchange[e].append(q)
        if buyer is not None:
            by_participant[("buyer", e, buyer)].append(q)
        if seller is not None:
            by_participant[("seller", e, seller)].append(q)
    top_share = max(math.fsum(v) for v in by_exchange.values()) / volume if used else math.nan
    with_codes = any(t[3] is not None or t[4] is not None for t in used)
    top_participant = math.nan
    if used and with_codes:
        top_participant = max((math.fsum(v) for v in by_participant.values()), default=0.0)
        top_participant /= volume
    failed = set()
    if len(used) < rule["min_trades"]:
        failed.add("min_trades")
    if not used or volume < rule["min_volume"]:
        failed.add("min_volume")
    if len(by_exchange) < rule["min_exchanges"]:
        failed.add("min_exchanges")
    if used and top_share > rule["max_exchange_share"]:
        failed.add("max_exchange_share")
    if used and top_participant > rule.get("max_participant_share", 1.0):
        failed.add("max_participant_share")
    return {
        "window_trades": len(trades),
        "lot_trades": len(lot),
        "center": center,
        "scale": scale,
        "trades": len(used),
        "volume": volume,
        "vwap": math.fsum(t[0] * t[1] for t in used) / volume if used else math.nan,
        "high": max(t[0] for t in used) if used else math.nan,
        "low": min(t[0] for t in used) if used else math.nan,
        "exchanges": len(by_exchange),
        "top_share": top_share,
        "top_participant_share": top_participant,
        "failed": failed,
        "verdicts": verdicts,
    }


def assess_all(commodity, time, price, quantity, exchange, closes, rules, participants=None):
    """{(commodity, window): assess_window(...)} for every window j >= 1 of ``closes[c]``.

    Window j of commodity c holds the trades with closes[c][j - 1] < time <= closes[c][j];
    trades are taken in order of (time, price, quantity, exchange). ``participants`` gives
    each trade's (buyer, seller, affiliated).
    """
    extra = participants or [(None, None, False)] * len(commodity)
    rows = sorted(
        zip(commodity, time, price, quantity, exchange, extra, strict=True),
        key=lambda r: r[:5],
    )
    out = {}
    for c, cutoffs in enumerate(closes):
        for j in range(1, len(cutoffs)):
            window = [
                (p, q, e, *more)
                for cc, t, p, q, e, more in rows
                if cc == c and cutoffs[j - 1] < t <= cutoffs[j]
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
