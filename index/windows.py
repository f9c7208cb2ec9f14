"""Trading days and assessment windows.

A trading day D's window runs from the previous trading day's cut-off (exclusive) to D's
cut-off (inclusive), local time: a trade after the cut-off counts for the next trading day.
A calendar is anything with ``is_trading_day(date) -> bool``; the methodology's own
calendar (weekdays, holidays, working days) is the default.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np

from bcpi.errors import InvalidInput
from index.methodology import CalendarRules

SEARCH_LIMIT_DAYS = 400


class Calendar(Protocol):
    def is_trading_day(self, day: dt.date) -> bool: ...


class MethodologyCalendar:
    """Trading days as the methodology states them."""

    def __init__(self, rules: CalendarRules) -> None:
        self.rules = rules
        self._weekdays = frozenset(rules.weekdays)

    def is_trading_day(self, day: dt.date) -> bool:
        if day in self.rules.working_days:
            return True
        if day in self.rules.holidays:
            return False
        return day.isoweekday() in self._weekdays


def trading_days(calendar: Calendar, start: dt.date, end: dt.date) -> list[dt.date]:
    """Trading days from ``start`` to ``end``, both inclusive."""
    span = (end - start).days + 1
    days = (start + dt.timedelta(days=n) for n in range(max(span, 0)))
    return [d for d in days if calendar.is_trading_day(d)]


def step_trading_day(calendar: Calendar, day: dt.date, direction: int) -> dt.date:
    """The nearest trading day strictly after (``direction=1``) or before (-1) ``day``."""
    candidate = day
    for _ in range(SEARCH_LIMIT_DAYS):
        candidate += dt.timedelta(days=direction)
        if calendar.is_trading_day(candidate):
            return candidate
    raise InvalidInput("calendar", f"no trading day within {SEARCH_LIMIT_DAYS} days of {day}")


def close_instant(day: dt.date, cutoff: dt.time, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, cutoff, zone)


def epoch_ms(instant: dt.datetime) -> int:
    return round(instant.timestamp() * 1000)


def window_closes(
    days: list[dt.date], previous_day: dt.date, cutoffs: list[dt.time], zone: ZoneInfo
) -> np.ndarray:
    """``closes[c, j]``: cut-off instant (epoch ms) of commodity c on ``[previous_day, *days][j]``.

    Window j ≥ 1 of commodity c is ``(closes[c, j - 1], closes[c, j]]``.
    """
    all_days = [previous_day, *days]
    closes = np.empty((len(cutoffs), len(all_days)), dtype=np.int64)
    for c, cutoff in enumerate(cutoffs):
        for j, day in enumerate(all_days):
            closes[c, j] = epoch_ms(close_instant(day, cutoff, zone))
    return closes
