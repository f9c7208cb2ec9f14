"""Compare what two demo databases published, day by day (run as a module).

    python -m tests.demo_comparison BEFORE.db AFTER.db

BEFORE is a demo published under methodology 2025.1 (weekdays), AFTER one published under
the calendar in force. For every (index or commodity, date) both published, the values are
compared bit for bit, apart for the days whose assessment window the calendar changed (the
publication day before them is not the weekday before them): those may differ, as their
windows now hold the trades of the days that are no longer publication days.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys

from core.calendar import Calendar
from core.methodology import in_force

VALUES = {
    "assessments": "select c.code, a.date, a.price from assessments a join commodities c"
    " on c.id = a.commodity_id where a.superseded_at is null and a.status in ('final', 'restated')",
    "index values": "select i.code, v.date, v.value from index_values v join index_definitions i"
    " on i.id = v.index_id where v.superseded_at is null and v.status in ('final', 'restated')",
}


def _weekday_before(day: dt.date) -> dt.date:
    day -= dt.timedelta(days=1)
    while day.isoweekday() > 5:
        day -= dt.timedelta(days=1)
    return day


def compare(before: str, after: str) -> list[str]:
    calendar = Calendar(in_force())
    lines = []
    for name, query in VALUES.items():
        old = {(code, d): v for code, d, v in sqlite3.connect(before).execute(query)}
        new = {(code, d): v for code, d, v in sqlite3.connect(after).execute(query)}
        common = set(old) & set(new)

        def same_window(key) -> bool:
            day = dt.date.fromisoformat(key[1])
            return calendar.previous_publication_day(day) == _weekday_before(day)

        kept = [k for k in common if same_window(k)]
        moved = [k for k in common if not same_window(k)]
        differ = [k for k in kept if old[k] != new[k]]
        gone = sorted({d for _, d in set(old) - set(new)})
        lines.append(
            f"{name}: {len(old)} before, {len(new)} after; on days with the same window "
            f"{len(kept)} compared, {len(differ)} differ; on days whose window grew {len(moved)} "
            f"({sum(old[k] != new[k] for k in moved)} differ); dates only before: {len(gone)}"
        )
        lines += [f"  differs: {k} {old[k]!r} -> {new[k]!r}" for k in sorted(differ)[:10]]
    return lines


if __name__ == "__main__":
    print("\n".join(compare(*sys.argv[1:3])))
