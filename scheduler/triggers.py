"""APScheduler's view of a publication schedule: fire at each slot of its :class:`Slots`."""

from __future__ import annotations

import datetime as dt

from apscheduler.triggers.base import BaseTrigger

from publication.schedule import TICK, Slots


class SlotTrigger(BaseTrigger):
    def __init__(self, slots: Slots) -> None:
        self.slots = slots

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        start = previous_fire_time + TICK if previous_fire_time else now
        return self.slots.first_at_or_after(start)

    def __str__(self) -> str:
        return str(self.slots)
