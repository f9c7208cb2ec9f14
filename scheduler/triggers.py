"""Calendar-aware APScheduler triggers whose fire times are a job's *slots*.

A slot is the instant a job is due: the daily fixing of 26 November 2026 is the slot
2026-11-26 15:00 Asia/Shanghai. The same trigger serves APScheduler (the next fire time)
and catch-up (every slot in a past interval), so the two never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

SEARCH_LIMIT_DAYS = 800  # an annual job's next slot may be a year and a holiday away
TICK = dt.timedelta(microseconds=1)


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone)


class SlotTrigger(BaseTrigger):
    """Slots are enumerable both ways; subclasses say which instants they are."""

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        raise NotImplementedError

    def last_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        raise NotImplementedError

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        start = previous_fire_time + TICK if previous_fire_time else now
        return self.first_at_or_after(start)

    def slots(self, start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
        """Every slot in ``start..end`` (both inclusive), in order, in UTC."""
        slot = self.first_at_or_after(start)
        while slot is not None and slot <= end:
            yield slot.astimezone(dt.UTC)
            slot = self.first_at_or_after(slot + TICK)


class DailyTrigger(SlotTrigger):
    """One slot on each qualifying day: local midnight of the day plus ``offset``.

    ``offset`` may pass 24 hours (a sweep the morning after a trading day is that day's
    midnight plus 1 day 8:30), so ``qualifies`` always judges the day the slot belongs to.
    """

    def __init__(
        self,
        offset: dt.timedelta,
        qualifies: Callable[[dt.date], bool],
        zone: ZoneInfo,
        label: str,
    ) -> None:
        self.offset, self.qualifies, self.zone, self.label = offset, qualifies, zone, label

    def _slot(self, day: dt.date) -> dt.datetime:
        return _midnight(day, self.zone) + self.offset

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        day = instant.astimezone(self.zone).date() - dt.timedelta(days=self.offset.days)
        for _ in range(SEARCH_LIMIT_DAYS):
            if self.qualifies(day) and self._slot(day) >= instant:
                return self._slot(day)
            day += dt.timedelta(days=1)
        return None

    def last_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        day = instant.astimezone(self.zone).date()
        for _ in range(SEARCH_LIMIT_DAYS):
            if self.qualifies(day) and self._slot(day) <= instant:
                return self._slot(day)
            day -= dt.timedelta(days=1)
        return None

    def __str__(self) -> str:
        return f"{self.label} at {self.offset} after local midnight ({self.zone.key})"

    def __repr__(self) -> str:
        return f"<DailyTrigger {self}>"


class SessionIntervalTrigger(SlotTrigger):
    """Every ``interval`` from each session's start, before its end, on qualifying days."""

    def __init__(
        self,
        sessions: list[tuple[dt.timedelta, dt.timedelta]],
        interval: dt.timedelta,
        qualifies: Callable[[dt.date], bool],
        zone: ZoneInfo,
    ) -> None:
        if interval <= dt.timedelta(0):
            raise ValueError("interval must be positive")
        self.sessions, self.interval, self.qualifies, self.zone = (
            sessions,
            interval,
            qualifies,
            zone,
        )

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        day = instant.astimezone(self.zone).date()
        for _ in range(SEARCH_LIMIT_DAYS):
            if self.qualifies(day):
                midnight = _midnight(day, self.zone)
                for start_offset, end_offset in self.sessions:
                    start, end = midnight + start_offset, midnight + end_offset
                    if instant <= start:
                        return start
                    if instant < end:
                        steps = -((start - instant) // self.interval)  # ceiling
                        slot = start + steps * self.interval
                        if slot < end:
                            return slot
            day += dt.timedelta(days=1)
        return None

    def last_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        day = instant.astimezone(self.zone).date()
        for _ in range(SEARCH_LIMIT_DAYS):
            if self.qualifies(day):
                midnight = _midnight(day, self.zone)
                for start_offset, end_offset in reversed(self.sessions):
                    start, end = midnight + start_offset, midnight + end_offset
                    if instant >= start:
                        latest = min(instant, end - TICK)
                        return start + ((latest - start) // self.interval) * self.interval
            day -= dt.timedelta(days=1)
        return None

    def __str__(self) -> str:
        hours = ", ".join(f"{s}-{e}" for s, e in self.sessions)
        return f"every {self.interval.total_seconds():g}s during {hours} ({self.zone.key})"

    def __repr__(self) -> str:
        return f"<SessionIntervalTrigger {self}>"


class UnionTrigger(SlotTrigger):
    """The slots of several triggers together."""

    def __init__(self, *triggers: SlotTrigger) -> None:
        self.triggers = triggers

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        found = [t.first_at_or_after(instant) for t in self.triggers]
        return min((f for f in found if f is not None), default=None)

    def last_at_or_before(self, instant: dt.datetime) -> dt.datetime | None:
        found = [t.last_at_or_before(instant) for t in self.triggers]
        return max((f for f in found if f is not None), default=None)

    def __str__(self) -> str:
        return " | ".join(str(t) for t in self.triggers)

    def __repr__(self) -> str:
        return f"<UnionTrigger {self}>"
