"""SDMX time periods and instants as query values: a period is the interval of days it
covers (``2026`` is the year, ``2026-01`` January, ``2026-Q1`` the first quarter)."""

from __future__ import annotations

import calendar
import datetime as dt
import re

from api.params import instant
from api.sdmx.errors import SdmxSyntaxError
from core.errors import InvalidRange

PERIOD_FORMS = "YYYY, YYYY-MM, YYYY-MM-DD, YYYY-Qn, YYYY-Sn or YYYY-Wnn"
_PERIOD = re.compile(
    r"^(?P<y>\d{4})"
    r"(?:-(?:(?P<m>\d{2})(?:-(?P<d>\d{2}))?|Q(?P<q>[1-4])|S(?P<s>[12])|W(?P<w>\d{2})|A1?))?$"
)


def period(field: str, text: str) -> tuple[dt.date, dt.date]:
    """The first and last day of the period ``text``."""
    match = _PERIOD.match(text.strip())
    try:
        if match is None:
            raise ValueError
        year = int(match["y"])
        if match["d"]:
            day = dt.date(year, int(match["m"]), int(match["d"]))
            return day, day
        if match["m"]:
            month = int(match["m"])
            last = calendar.monthrange(year, month)[1]
            return dt.date(year, month, 1), dt.date(year, month, last)
        if match["q"] or match["s"]:
            months = 3 if match["q"] else 6
            first_month = (int(match["q"] or match["s"]) - 1) * months + 1
            last_month = first_month + months - 1
            last = calendar.monthrange(year, last_month)[1]
            return dt.date(year, first_month, 1), dt.date(year, last_month, last)
        if match["w"]:
            monday = dt.date.fromisocalendar(year, int(match["w"]), 1)
            return monday, monday + dt.timedelta(days=6)
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    except ValueError:
        raise SdmxSyntaxError(
            f"{field}: {text!r} is not a time period; use {PERIOD_FORMS}", field=field
        ) from None


def moment(field: str, text: str) -> dt.datetime:
    """An ISO 8601 instant (UTC when it has no offset); a ``+`` of the offset that the
    query string turned into a space is read back as ``+``."""
    cleaned = text.strip().replace(" ", "+")
    try:
        value = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise SdmxSyntaxError(
            f"{field}: {text!r} is not an ISO 8601 instant (e.g. 2026-01-05T08:00:00Z)",
            field=field,
        ) from None
    try:
        return instant(field, value)
    except InvalidRange as exc:
        raise SdmxSyntaxError(exc.message, field=field) from None
