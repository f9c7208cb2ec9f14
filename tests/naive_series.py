"""Slow, obvious references for serving series: period collapse and transforms.

Plain Python over lists of (date, value) pairs, written to be read; nothing here imports
the code under test.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math


def period_of(day: dt.date, frequency: str) -> tuple:
    if frequency == "weekly":
        return day.isocalendar()[:2]  # ISO year and week: Monday to Sunday
    if frequency == "monthly":
        return (day.year, day.month)
    if frequency == "quarterly":
        return (day.year, (day.month - 1) // 3)
    if frequency == "annual":
        return (day.year,)
    return (day,)


def collapse(points: list[dict], frequency: str) -> list[dict]:
    """Each period's last point, with the period's open, high, low and close of ``value``.

    ``points`` are dicts with ``date`` and ``value`` (and anything else), in date order.
    """
    groups: dict[tuple, list[dict]] = {}
    for point in points:
        groups.setdefault(period_of(point["date"], frequency), []).append(point)
    out = []
    for members in groups.values():
        last = dict(members[-1])
        values = [m["value"] for m in members]
        last.update(open=values[0], high=max(values), low=min(values), close=values[-1])
        if "trades" in last:
            last["trades"] = sum(m["trades"] for m in members)
            last["volume"] = math.fsum(m["volume"] for m in members)
            last["high"] = max(m["high"] for m in members)
            last["low"] = min(m["low"] for m in members)
        out.append(last)
    return out


def transform(values: list[float], kind: str, rebase_to: float = 100.0) -> list[float]:
    """The transformed values; change transforms have one value fewer (the first has none)."""
    if kind == "level":
        return list(values)
    if kind == "rebase":
        return [rebase_to * v / values[0] for v in values]
    out = []
    for previous, value in itertools.pairwise(values):
        if kind == "change":
            out.append(value - previous)
        elif kind == "pct_change":
            out.append((value / previous - 1.0) * 100.0)
        else:
            out.append(math.log(value / previous))
    return out
