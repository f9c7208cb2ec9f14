"""The mainland China trading calendar: public holidays and weekend make-up working days (调休).

The source is the ``holidays`` package's China calendar. For every year whose State Council
notice it carries (its *official* years) it knows the holidays, the weekdays given off in
exchange and the weekend days worked to make up for them. Past its last official year it
knows only the statutory holidays by rule: bcpi then logs a warning (once per year asked
about, never a crash) and goes on with those. An override list (settings or a TOML file)
adds holidays and working days, for instance the next year's notice before the package
catches up, and may declare the calendar complete through a date to silence the warning.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import holidays

from bcpi.errors import CalendarError

if TYPE_CHECKING:
    from bcpi.settings import Settings

log = logging.getLogger("bcpi.calendar")

SEARCH_LIMIT_DAYS = 400
_SESSION = re.compile(r"^\s*(\d{1,2}):(\d\d)\s*-\s*(\d{1,2}):(\d\d)\s*$")


def parse_sessions(text: str) -> list[tuple[dt.timedelta, dt.timedelta]]:
    """``"09:00-11:30,13:30-15:00"`` → [(start, end)] as offsets from local midnight.

    Sessions must be ordered and must not overlap; ``24:00`` may end the last one.
    """
    sessions: list[tuple[dt.timedelta, dt.timedelta]] = []
    for part in text.split(","):
        match = _SESSION.match(part)
        if not match:
            raise ValueError(f"trading session {part.strip()!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(f"trading session {part.strip()!r} names an impossible time")
        start, end = dt.timedelta(hours=h1, minutes=m1), dt.timedelta(hours=h2, minutes=m2)
        if end <= start:
            raise ValueError(f"trading session {part.strip()!r} ends before it starts")
        if sessions and start < sessions[-1][1]:
            raise ValueError(f"trading session {part.strip()!r} overlaps or precedes the previous")
        sessions.append((start, end))
    return sessions


def _official_through() -> dt.date:
    """Last day of the last year for which the package carries the State Council's notice."""
    try:
        from holidays.countries.china import ChinaStaticHolidays

        return dt.date(max(ChinaStaticHolidays.special_public_holidays), 12, 31)
    except (ImportError, AttributeError, ValueError):
        # Without that table: the last year whose make-up working days are known.
        this_year = dt.date.today().year
        known = [y for y in range(this_year - 1, this_year + 3) if _china(y).weekend_workdays]
        return dt.date(max(known, default=this_year - 1), 12, 31)


def _china(year: int) -> holidays.HolidayBase:
    return holidays.China(years=year)


@dataclass(frozen=True)
class CalendarOverrides:
    holidays: frozenset[dt.date] = frozenset()
    working_days: frozenset[dt.date] = frozenset()
    covered_through: dt.date | None = None


def load_overrides(path: Path) -> CalendarOverrides:
    """Read ``holidays = [...]``, ``working_days = [...]``, ``covered_through = DATE``."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CalendarError(f"calendar file {path}: {exc}", path=str(path)) from exc
    unknown = set(data) - {"holidays", "working_days", "covered_through"}
    if unknown:
        raise CalendarError(f"calendar file {path}: unknown keys {sorted(unknown)}", path=str(path))

    def dates(key: str) -> frozenset[dt.date]:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(
            isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in values
        ):
            raise CalendarError(
                f"calendar file {path}: {key} must be a list of dates (YYYY-MM-DD)", field=key
            )
        return frozenset(values)

    covered = data.get("covered_through")
    if covered is not None and (
        not isinstance(covered, dt.date) or isinstance(covered, dt.datetime)
    ):
        raise CalendarError(
            f"calendar file {path}: covered_through must be a date", field="covered_through"
        )
    return CalendarOverrides(dates("holidays"), dates("working_days"), covered)


@dataclass
class TradingCalendar:
    """Is a Beijing calendar day a trading day? Overrides first, then the package."""

    extra_holidays: frozenset[dt.date] = frozenset()
    extra_working_days: frozenset[dt.date] = frozenset()
    make_up_days_trade: bool = True
    covered_through: dt.date | None = None
    official_through: dt.date = field(default_factory=_official_through)
    _years: dict[int, holidays.HolidayBase | None] = field(default_factory=dict, repr=False)
    _warned: set[int] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        both = self.extra_holidays & self.extra_working_days
        if both:
            days = ", ".join(d.isoformat() for d in sorted(both))
            raise CalendarError(
                f"calendar overrides list {days} both as holiday and as working day"
            )

    @property
    def horizon(self) -> dt.date:
        """Last day the calendar is known to be complete."""
        return max(self.official_through, self.covered_through or self.official_through)

    def _year(self, year: int) -> holidays.HolidayBase | None:
        with self._lock:
            if year not in self._years:
                try:
                    self._years[year] = _china(year)
                except Exception as exc:  # a broken package must not stop the fixing
                    log.error(
                        "trading calendar: the holidays package failed for %d (%s); "
                        "treating Monday to Friday as trading days there",
                        year,
                        exc,
                        extra={"year": year},
                    )
                    self._years[year] = None
            return self._years[year]

    def _warn_past_horizon(self, day: dt.date) -> None:
        with self._lock:
            if day.year in self._warned:
                return
            self._warned.add(day.year)
        log.warning(
            "trading calendar: %s is past %s, the last day of the published holiday schedule "
            "known to holidays %s; using the statutory holidays by rule, without weekend "
            "make-up working days. Add the State Council's notice for %d with "
            "BCPI_CALENDAR_EXTRA_HOLIDAYS / BCPI_CALENDAR_EXTRA_WORKING_DAYS or "
            "BCPI_CALENDAR_FILE (covered_through silences this), or upgrade holidays.",
            day.isoformat(),
            self.horizon.isoformat(),
            holidays.__version__,
            day.year,
            extra={"day": day.isoformat(), "horizon": self.horizon.isoformat()},
        )

    def is_trading_day(self, day: dt.date) -> bool:
        if day in self.extra_working_days:
            return True
        if day in self.extra_holidays:
            return False
        if day > self.horizon:
            self._warn_past_horizon(day)
        china = self._year(day.year)
        if china is None:
            return day.weekday() < 5
        if day in china:
            return False
        if day.weekday() >= 5:
            return self.make_up_days_trade and day in china.weekend_workdays
        return True

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trading days from ``start`` to ``end``, both inclusive."""
        return [
            start + dt.timedelta(days=n)
            for n in range((end - start).days + 1)
            if self.is_trading_day(start + dt.timedelta(days=n))
        ]

    def next_trading_day(self, day: dt.date, *, inclusive: bool = True) -> dt.date:
        return self._step(day, 1, inclusive)

    def previous_trading_day(self, day: dt.date, *, inclusive: bool = True) -> dt.date:
        return self._step(day, -1, inclusive)

    def _step(self, day: dt.date, direction: int, inclusive: bool) -> dt.date:
        candidate = day if inclusive else day + dt.timedelta(days=direction)
        for _ in range(SEARCH_LIMIT_DAYS):
            if self.is_trading_day(candidate):
                return candidate
            candidate += dt.timedelta(days=direction)
        raise CalendarError(
            f"no trading day within {SEARCH_LIMIT_DAYS} days of {day}", day=day.isoformat()
        )

    def status(self, today: dt.date) -> dict[str, object]:
        """What operations need to know: the source, its horizon, days left."""
        days_left = (self.horizon - today).days
        return {
            "source": f"holidays {holidays.__version__} (China)",
            "official_through": self.official_through.isoformat(),
            "horizon": self.horizon.isoformat(),
            "days_to_horizon": days_left,
            "make_up_days_trade": self.make_up_days_trade,
            "extra_holidays": len(self.extra_holidays),
            "extra_working_days": len(self.extra_working_days),
            "warning": None
            if days_left >= 60
            else f"the holiday schedule is known only through {self.horizon}: add the next "
            "year's notice to the calendar overrides or upgrade the holidays package",
        }


def calendar_from_settings(settings: Settings) -> TradingCalendar:
    """The calendar configured by ``BCPI_CALENDAR_*`` (settings lists and the TOML file)."""
    overrides = (
        load_overrides(settings.calendar_file) if settings.calendar_file else CalendarOverrides()
    )
    return TradingCalendar(
        extra_holidays=overrides.holidays | frozenset(settings.calendar_extra_holidays),
        extra_working_days=overrides.working_days | frozenset(settings.calendar_extra_working_days),
        make_up_days_trade=settings.calendar_make_up_days_trade,
        covered_through=overrides.covered_through,
    )
