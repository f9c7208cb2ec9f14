"""Slow, obvious references for serving series: period collapse and transforms.

Plain Python over lists of (date, value) pairs, written to be read; nothing here imports
the code under test.
"""

from __future__ import annotations

import datetime as dt
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


def transform(values: list[float], kind: str, rebase_to: float = 100.0) -> list[float | None]:
    """The transformed values, one per value; the first point of a change transform has
    no previous value and is None."""
    if kind == "level":
        return list(values)
    if kind == "rebase":
        return [rebase_to * v / values[0] for v in values]
    out: list[float | None] = [None]
    for n in range(1, len(values)):
        previous, value = values[n - 1], values[n]
        if kind == "change":
            out.append(value - previous)
        elif kind == "pct_change":
            out.append((value / previous - 1.0) * 100.0)
        else:
            out.append(math.log(value / previous))
    return out


def a_year_before(day: dt.date) -> dt.date:
    """The same calendar date a year earlier; 29 February becomes 28 February."""
    if day.month == 2 and day.day == 29:
        return dt.date(day.year - 1, 2, 28)
    return dt.date(day.year - 1, day.month, day.day)


def weeks_in(iso_year: int) -> int:
    return dt.date(iso_year, 12, 28).isocalendar()[1]


def same_period_a_year_before(day: dt.date, frequency: str) -> tuple:
    if frequency == "weekly":
        year, week = day.isocalendar()[:2]
        return (year - 1, min(week, weeks_in(year - 1)))
    if frequency == "monthly":
        return (day.year - 1, day.month)
    if frequency == "quarterly":
        return (day.year - 1, (day.month - 1) // 3)
    return (day.year - 1,)


def yoy(points: list[dict], frequency: str = "daily") -> list[float | None]:
    """100 × (v / v_ref − 1) for each of ``points`` (dicts with ``date`` and ``value``, in
    date order, collapsed already when ``frequency`` is a period): v_ref is the value of
    the latest point on or before the same date a year earlier, or, for periods, of the
    same period a year earlier; None where there is none."""
    out: list[float | None] = []
    for point in points:
        reference = None
        if frequency == "daily":
            limit = a_year_before(point["date"])
            for candidate in points:
                if candidate["date"] <= limit:
                    reference = candidate["value"]
        else:
            wanted = same_period_a_year_before(point["date"], frequency)
            for candidate in points:
                if period_of(candidate["date"], frequency) == wanted:
                    reference = candidate["value"]
        if reference is None or point["value"] is None:
            out.append(None)
        else:
            out.append((point["value"] / reference - 1.0) * 100.0)
    return out
