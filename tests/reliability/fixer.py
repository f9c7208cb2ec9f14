"""``python -m tests.reliability.fixer YYYY-MM-DD``: run that day's fixing slot once, as the
scheduler does (the job body of :mod:`scheduler.jobs` inside the exactly-once fence of
:mod:`scheduler.runs`), and exit 0 when it succeeded. The database and any fault
injection come from the ``BCPI_*`` environment."""

from __future__ import annotations

import datetime as dt
import json
import sys

from core.calendar import Calendar
from core.settings import get_settings
from scheduler.jobs import JobContext, fixing
from scheduler.runs import SUCCEEDED, run_slot
from store.db import engine_for


def fixing_slot(day: dt.date, calendar: Calendar) -> dt.datetime:
    """The scheduler's slot of ``day``'s fixing: the calendar's fixing instant, in UTC."""
    return calendar.fixing_at(day).astimezone(dt.UTC)


def main(argv: list[str]) -> int:
    day = dt.date.fromisoformat(argv[0])
    settings = get_settings()
    calendar = Calendar.from_settings(settings)
    engine = engine_for(settings.database_url, settings.sqlite_busy_timeout_ms)
    slot = fixing_slot(day, calendar)

    def clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def body(session):
        return fixing(session, JobContext(slot, clock(), settings, calendar))

    record = run_slot(engine, "fixing", slot, body, holder="reliability-fixer", clock=clock)
    print(json.dumps({"outcome": record.outcome, "error": record.error, "detail": record.detail}))
    return 0 if record.outcome in (SUCCEEDED, "done_elsewhere") else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
