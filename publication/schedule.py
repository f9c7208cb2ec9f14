"""When each scheduled act of publication is due: its *slots*, asked of the calendar.

A slot is the instant an act is due: the fixing of 26 November 2026 is the slot 2026-11-26
15:00 Asia/Shanghai, the calendar's ``fixing_at``. Slots are enumerable both ways, so the
same schedule tells the scheduler its next fire time, catch-up every slot of a past
interval, and operations which slot is overdue: the three never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from core.calendar import Calendar
from core.settings import Settings

SEARCH_LIMIT_DAYS = 800  # an annual act's next slot may be a year and a holiday away
TICK = dt.timedelta(microseconds=1)


class Slots:
    """An enumerable set of instants; subclasses say which."""

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        raise NotImplementedError

    def last_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        raise NotImplementedError

    def slots(self, start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
        """Every slot in ``start..end`` (both inclusive), in order, in UTC."""
        slot = self.first_at_or_after(start)
        while slot is not None and slot <= end:
            yield slot.astimezone(dt.UTC)
            slot = self.first_at_or_after(slot + TICK)


class DailySlots(Slots):
    """One slot on each qualifying day: the day's local midnight plus ``offset``.

    ``offset`` may pass 24 hours (a sweep the morning after a publication day is that day's
    midnight plus 1 day 8:30), so ``qualifies`` always judges the day the slot belongs to.
    """

    def __init__(
        self,
        calendar: Calendar,
        offset: dt.timedelta,
        qualifies: Callable[[dt.date], bool],
        label: str,
    ) -> None:
        self.calendar, self.offset, self.qualifies, self.label = calendar, offset, qualifies, label

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        day = self.calendar.local_date(instant) - dt.timedelta(days=self.offset.days)
        for _ in range(SEARCH_LIMIT_DAYS):
            if self.qualifies(day) and self.calendar.at(day, self.offset) >= instant:
                return self.calendar.at(day, self.offset)
            day += dt.timedelta(days=1)
        return None

    def last_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        day = self.calendar.local_date(instant)
        for _ in range(SEARCH_LIMIT_DAYS):
            if self.qualifies(day) and self.calendar.at(day, self.offset) <= instant:
                return self.calendar.at(day, self.offset)
            day -= dt.timedelta(days=1)
        return None

    def __str__(self) -> str:
        return f"{self.label} at {self.offset} after local midnight ({self.calendar.zone.key})"


class SessionSlots(Slots):
    """Every ``interval`` from each trading session's start, before its end."""

    def __init__(self, calendar: Calendar, interval: dt.timedelta) -> None:
        if interval <= dt.timedelta(0):
            raise ValueError("interval must be positive")
        self.calendar, self.interval = calendar, interval

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        day = self.calendar.local_date(instant)
        for _ in range(SEARCH_LIMIT_DAYS):
            for start, end in self.calendar.sessions(day):
                if instant <= start:
                    return start
                if instant < end:
                    slot = start - ((start - instant) // self.interval) * self.interval
                    if slot < end:
                        return slot
            day += dt.timedelta(days=1)
        return None

    def last_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        day = self.calendar.local_date(instant)
        for _ in range(SEARCH_LIMIT_DAYS):
            for start, end in reversed(self.calendar.sessions(day)):
                if instant >= start:
                    latest = min(instant, end - TICK)
                    return start + ((latest - start) // self.interval) * self.interval
            day -= dt.timedelta(days=1)
        return None

    def __str__(self) -> str:
        hours = ", ".join(f"{s}-{e}" for s, e in self.calendar.session_offsets)
        return f"every {self.interval.total_seconds():g}s during {hours} ({self.calendar.zone.key})"


class FixingSlots(Slots):
    """Each publication day's :meth:`Calendar.fixing_at` (its cut-off plus the reporting
    grace of the version in force that day), or ``after`` it."""

    def __init__(
        self, calendar: Calendar, after: dt.timedelta = dt.timedelta(0), label: str = "fixing"
    ) -> None:
        self.calendar, self.after, self.label = calendar, after, label

    def _slot(self, day: dt.date) -> dt.datetime | None:
        if not self.calendar.is_publication_day(day):
            return None
        return self.calendar.fixing_at(day) + self.after

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        day = (
            self.calendar.local_date(instant)
            - dt.timedelta(days=1)
            - dt.timedelta(days=self.after.days)
        )
        for _ in range(SEARCH_LIMIT_DAYS):
            slot = self._slot(day)
            if slot is not None and slot >= instant:
                return slot
            day += dt.timedelta(days=1)
        return None

    def last_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        day = self.calendar.local_date(instant)
        for _ in range(SEARCH_LIMIT_DAYS):
            slot = self._slot(day)
            if slot is not None and slot <= instant:
                return slot
            day -= dt.timedelta(days=1)
        return None

    def __str__(self) -> str:
        after = f" + {self.after}" if self.after else ""
        return (
            f"{self.label} at each publication day's cut-off plus its reporting grace{after}"
            f" ({self.calendar.zone.key})"
        )


class UnionSlots(Slots):
    """The slots of several schedules together."""

    def __init__(self, *parts: Slots) -> None:
        self.parts = parts

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        found = [p.first_at_or_after(instant) for p in self.parts]
        return min((f for f in found if f is not None), default=None)

    def last_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        found = [p.last_at_or_before(instant) for p in self.parts]
        return max((f for f in found if f is not None), default=None)

    def __str__(self) -> str:
        return " | ".join(str(p) for p in self.parts)


def _offset(moment: dt.time) -> dt.timedelta:
    return dt.timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)


def intraday_slots(settings: Settings, calendar: Calendar) -> Slots:
    """Every intraday interval (the methodology's, unless set) in the trading sessions."""
    seconds = settings.intraday_interval_seconds or calendar.methodology.intraday.interval_seconds
    return SessionSlots(calendar, dt.timedelta(seconds=seconds))


def fixing_slots(settings: Settings, calendar: Calendar) -> Slots:
    """Each publication day's fixing instant, under the version in force that day."""
    return FixingSlots(calendar)


def sweep_slots(settings: Settings, calendar: Calendar) -> Slots:
    """After each day's fixing (under the version in force that day), and the next morning."""
    after = dt.timedelta(minutes=settings.sweep_delay_minutes)
    morning = dt.timedelta(days=1) + _offset(settings.sweep_morning_time)
    return UnionSlots(
        FixingSlots(calendar, after, "after the fixing"),
        DailySlots(calendar, morning, calendar.is_publication_day, "the morning after"),
    )


def _rebalance_slots(settings: Settings, calendar: Calendar, which: int, label: str) -> Slots:
    """On the publication day of the rebalance's announcement (``which`` = 0, for next
    year's weights) or effective date (1), at ``rebalance_time``."""

    def qualifies(day: dt.date) -> bool:
        year = day.year + 1 if which == 0 else day.year
        return day == calendar.rebalance_days(year)[which]

    return DailySlots(calendar, _offset(settings.rebalance_time), qualifies, label)


def announce_slots(settings: Settings, calendar: Calendar) -> Slots:
    return _rebalance_slots(settings, calendar, 0, "rebalance announcement")


def apply_slots(settings: Settings, calendar: Calendar) -> Slots:
    return _rebalance_slots(settings, calendar, 1, "rebalance effective date")


def _catchup(settings: Settings) -> dt.timedelta:
    return dt.timedelta(days=settings.catchup_horizon_days)


def _annual(settings: Settings) -> dt.timedelta:
    return max(_catchup(settings), dt.timedelta(days=31))


@dataclass(frozen=True)
class Event:
    """A scheduled act of publication: its slots, and how far back a missed one still runs."""

    name: str
    slots: Callable[[Settings, Calendar], Slots]
    horizon: Callable[[Settings], dt.timedelta]
    retry: bool = True  # retry a failed slot (with backoff) while inside the horizon


# In order of precedence when two acts share a slot.
EVENTS: tuple[Event, ...] = (
    Event("rebalance_apply", apply_slots, _annual),
    Event(
        "intraday",
        intraday_slots,
        lambda s: dt.timedelta(seconds=s.intraday_catchup_seconds),
        retry=False,
    ),
    Event("fixing", fixing_slots, _catchup),
    Event("restatement_sweep", sweep_slots, _catchup),
    Event("rebalance_announce", announce_slots, _annual),
)


def event(name: str) -> Event:
    return next(e for e in EVENTS if e.name == name)
