"""The publication calendar: the one place that answers questions about days and instants.

Is D a publication day, which comes before or after it, when are its trading sessions,
when is its cut-off, which trades does its assessment window hold, which day's window holds
a trade, when is its fixing computed, which trades make a rebalance's data year: every
module asks a :class:`Calendar`, and none computes weekdays, holidays, cut-offs or names
the time zone itself.

The fixing of a day is computed at its cut-off plus the reporting grace of the version in
force that day (trades executed in the window and received within the grace count).

Publication days are methodology data (``[calendar]`` of the methodology file). Under the
``mainland`` rule they follow the mainland exchanges (Shanghai, Dalian, Zhengzhou): weekdays
that are not public holidays; weekend make-up working days (调休) are not publication
days. Holidays come from the ``holidays`` package for the years whose State Council notice
it carries, then from an operator override file (dated additions and removals) for a
year it does not carry yet. Past the last year the calendar can vouch for it goes on with
the statutory holidays by rule and marks that year *provisional*: never a crash, never a
stop of publication on 1 January.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import holidays
import polars as pl

from core.errors import CalendarError
from core.methodology import Methodology, in_force, versions

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger("bcpi.calendar")

SEARCH_LIMIT_DAYS = 400
EPOCH = dt.date(1970, 1, 1)
_DAY_US = 86_400_000_000
_OFFSETS_KEPT = 100_000
_UNKNOWN = object()
WARN_FROM = (11, 1)
"""Month and day of the year before from which a provisional year is announced."""

Sessions = tuple[tuple[dt.timedelta, dt.timedelta], ...]


@dataclass(frozen=True)
class CalendarOverrides:
    """The operator's dated additions and removals, and how far the calendar is complete."""

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

    def is_date(value: object) -> bool:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)

    def dates(key: str) -> frozenset[dt.date]:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(is_date(v) for v in values):
            raise CalendarError(
                f"calendar file {path}: {key} must be a list of dates (YYYY-MM-DD)", field=key
            )
        return frozenset(values)

    covered = data.get("covered_through")
    if covered is not None and not is_date(covered):
        raise CalendarError(
            f"calendar file {path}: covered_through must be a date", field="covered_through"
        )
    overrides = CalendarOverrides(dates("holidays"), dates("working_days"), covered)
    both = overrides.holidays & overrides.working_days
    if both:
        days = ", ".join(d.isoformat() for d in sorted(both))
        raise CalendarError(f"calendar file {path} lists {days} both as holiday and working day")
    return overrides


def official_through() -> int:
    """The last year whose State Council notice the ``holidays`` package carries."""
    from holidays.countries.china import ChinaStaticHolidays

    return max(ChinaStaticHolidays.special_public_holidays)


@functools.cache
def _china(year: int) -> frozenset[dt.date]:
    """Mainland public holidays of ``year`` (by rule past the package's official years)."""
    try:
        return frozenset(holidays.China(years=year))
    except Exception as exc:  # a broken package must not stop the fixing
        log.error(
            "publication calendar: the holidays package failed for %d (%s); treating its "
            "weekdays as publication days: add the year's holidays to the override file",
            year,
            exc,
            extra={"year": year},
        )
        return frozenset()


@dataclass(frozen=True)
class PublicationDay:
    date: dt.date
    fixing_at: dt.datetime


@dataclass(frozen=True)
class CalendarYear:
    year: int
    provisional: bool
    days: tuple[PublicationDay, ...]

    def answer(self) -> dict:
        """``{"year", "provisional", "days": [{"date", "fixing_at"}]}`` (ISO-8601 text)."""
        return {
            "year": self.year,
            "provisional": self.provisional,
            "days": [
                {"date": d.date.isoformat(), "fixing_at": d.fixing_at.isoformat()}
                for d in self.days
            ],
        }


def _latest_cutoff(methodology: Methodology) -> dt.time:
    rules = methodology.assessment
    return max([rules.cutoff, *(o.cutoff for o in rules.commodities.values() if o.cutoff)])


def _grace(methodology: Methodology) -> dt.timedelta:
    return dt.timedelta(seconds=methodology.assessment.reporting_grace_seconds)


class Calendar:
    """Publication days, sessions, cut-offs and assessment windows under one methodology.

    ``days`` fixes the publication days to a recorded set (an audit replay runs each
    computation with the days it ran with); otherwise the methodology's rule decides.
    """

    def __init__(
        self,
        methodology: Methodology,
        overrides: CalendarOverrides | None = None,
        sessions: Sessions = ((dt.timedelta(hours=9), dt.timedelta(hours=15)),),
        *,
        days: Iterable[dt.date] | None = None,
        vouched_through: int | None = None,
    ) -> None:
        self.methodology = methodology
        self.rules = methodology.calendar
        self.overrides = overrides or CalendarOverrides()
        self.session_offsets = tuple(sessions)
        self.zone = ZoneInfo(self.rules.timezone)
        self._offsets: dict[int, int | None] = {}
        self._recorded = frozenset(days) if days is not None else None
        self._weekdays = frozenset(self.rules.weekdays)
        self._official = official_through() if vouched_through is None else vouched_through
        self._warned: set[int] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, methodology: Methodology | None = None) -> Calendar:
        """The calendar of the methodology in force, with the operator's override file."""
        overrides = load_overrides(settings.calendar_file) if settings.calendar_file else None
        return cls(methodology or in_force(), overrides, settings.sessions)

    def under(self, methodology: Methodology) -> Calendar:
        """This calendar (overrides, sessions, recorded days) under another version."""
        if methodology == self.methodology:
            return self
        return Calendar(
            methodology,
            self.overrides,
            self.session_offsets,
            days=self._recorded,
            vouched_through=self._official,
        )

    # -- days ------------------------------------------------------------------------------

    def is_publication_day(self, day: dt.date) -> bool:
        if self._recorded is not None:
            return day in self._recorded
        if self.rules.rule == "weekdays":
            if day in self.rules.working_days:
                return True
            return day not in self.rules.holidays and day.isoweekday() in self._weekdays
        for working, off in (
            (self.overrides.working_days, self.overrides.holidays),
            (self.rules.working_days, self.rules.holidays),
        ):
            if day in working:
                return True
            if day in off:
                return False
        if day.isoweekday() not in self._weekdays:
            return False
        if self.is_provisional(day.year):
            self._warn_provisional(day.year)
        return day not in _china(day.year)

    def publication_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Publication days from ``start`` to ``end``, both inclusive."""
        span = (end - start).days + 1
        days = (start + dt.timedelta(days=n) for n in range(max(span, 0)))
        return [d for d in days if self.is_publication_day(d)]

    def next_publication_day(self, day: dt.date, *, inclusive: bool = False) -> dt.date:
        return self._step(day, 1, inclusive)

    def previous_publication_day(self, day: dt.date, *, inclusive: bool = False) -> dt.date:
        return self._step(day, -1, inclusive)

    def _step(self, day: dt.date, direction: int, inclusive: bool) -> dt.date:
        candidate = day if inclusive else day + dt.timedelta(days=direction)
        for _ in range(SEARCH_LIMIT_DAYS):
            if self.is_publication_day(candidate):
                return candidate
            candidate += dt.timedelta(days=direction)
        raise CalendarError(
            f"no publication day within {SEARCH_LIMIT_DAYS} days of {day}", day=day.isoformat()
        )

    def publication_days_before(self, day: dt.date, count: int) -> dt.date:
        """The first of the ``count`` publication days that end on ``day`` (or before it)."""
        first = self.previous_publication_day(day, inclusive=True)
        for _ in range(count - 1):
            first = self.previous_publication_day(first)
        return first

    # -- instants --------------------------------------------------------------------------

    def local(self, instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(self.zone)

    def local_date(self, instant: dt.datetime) -> dt.date:
        return instant.astimezone(self.zone).date()

    def local_date_expr(self, instant: pl.Expr) -> pl.Expr:
        """The local date of a column of UTC instants."""
        return self.local_time_expr(instant).dt.date()

    def local_time_expr(self, instant: pl.Expr) -> pl.Expr:
        """The local wall-clock time (without a zone) of a column of UTC instants."""
        return instant.map_batches(self._wall_clock, return_dtype=pl.Datetime("us"))

    def _wall_clock(self, instants: pl.Series) -> pl.Series:
        """UTC instants to local wall-clock times by the zone's offset on each UTC day,
        asked once per distinct day; a day whose offset differs at its two ends (a
        transition) is converted row by row. No zone changes its offset twice in a day."""
        utc = instants.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        micros = utc.dt.replace_time_zone(None).cast(pl.Int64)
        days = micros // _DAY_US
        known = self._offsets
        offsets = {}
        for day in days.unique().drop_nulls().to_list():
            offset = known.get(day, _UNKNOWN)
            if offset is _UNKNOWN:
                offset = self._day_offset_us(day)
                if len(known) < _OFFSETS_KEPT:  # a feed of random instants cannot fill memory
                    known[day] = offset
            offsets[day] = offset
        offset = days.replace_strict(offsets, default=None, return_dtype=pl.Int64)
        local = (micros + offset).cast(pl.Datetime("us"))
        if offset.null_count() > micros.null_count():
            exact = utc.dt.convert_time_zone(self.zone.key).dt.replace_time_zone(None)
            local = local.zip_with(offset.is_not_null(), exact)
        return local.alias(instants.name)

    def _day_offset_us(self, day: int) -> int | None:
        """The zone's UTC offset through UTC day ``day`` (days since the epoch), in
        microseconds; None where it changes within the day or the day cannot be named."""
        try:
            start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day)
            end = start + dt.timedelta(days=1, microseconds=-1)
            first, last = (
                start.astimezone(self.zone).utcoffset(),
                end.astimezone(self.zone).utcoffset(),
            )
        except (OverflowError, ValueError):
            return None
        if first != last or first is None:
            return None
        return first // dt.timedelta(microseconds=1)

    def today(self, now: dt.datetime | None = None) -> dt.date:
        return self.local_date(now or dt.datetime.now(dt.UTC))

    def at(self, day: dt.date, moment: dt.time | dt.timedelta = dt.time()) -> dt.datetime:
        """The instant of local ``moment`` (a time, or an offset from midnight) on ``day``."""
        if isinstance(moment, dt.timedelta):
            return dt.datetime.combine(day, dt.time(), self.zone) + moment
        return dt.datetime.combine(day, moment, self.zone)

    def sessions(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The trading sessions of ``day`` (none on a day that is not a publication day)."""
        if not self.is_publication_day(day):
            return []
        return [(self.at(day, start), self.at(day, end)) for start, end in self.session_offsets]

    def cutoff_time(self, commodity: str | None = None) -> dt.time:
        rules = self.methodology.assessment
        return rules.rule(commodity).cutoff if commodity else rules.cutoff

    def cutoff(self, day: dt.date, commodity: str | None = None) -> dt.datetime:
        """The cut-off instant of ``day`` (the commodity's, or the methodology's default)."""
        return self.at(day, self.cutoff_time(commodity))

    @property
    def fixing_time(self) -> dt.time:
        """The local time of the fixing under this calendar's methodology: the latest
        cut-off of any commodity plus the reporting grace."""
        return (
            dt.datetime.combine(dt.date.min, _latest_cutoff(self.methodology))
            + _grace(self.methodology)
        ).time()

    def fixing_at(self, day: dt.date) -> dt.datetime:
        """When the fixing of ``day`` is computed: once every commodity's window has closed
        and the reporting grace of the version in force on ``day`` has passed."""
        governing = self.in_force_on(day)
        return self.at(day, _latest_cutoff(governing)) + _grace(governing)

    def in_force_on(self, day: dt.date) -> Methodology:
        """The version in force on ``day`` when this calendar's own is a version in force;
        otherwise (a version held back, or one made for a test) its own, on every day."""
        if self.methodology not in versions():
            return self.methodology
        return in_force(day)

    def window(self, day: dt.date, commodity: str | None = None) -> tuple[dt.datetime, dt.datetime]:
        """``(opens_after, closes_at]``: the previous publication day's cut-off (exclusive) to
        ``day``'s (inclusive). Trades on days that are not publication days fall inside it."""
        previous = self.previous_publication_day(day)
        return self.cutoff(previous, commodity), self.cutoff(day, commodity)

    def window_day(self, instant: dt.datetime, commodity: str | None = None) -> dt.date:
        """The publication day whose assessment window holds ``instant``."""
        local = self.local(instant)
        day = local.date()
        if local.time() > self.cutoff_time(commodity):
            day += dt.timedelta(days=1)
        return self.next_publication_day(day, inclusive=True)

    def window_day_expr(self, instant: pl.Expr, cutoff: pl.Expr) -> pl.Expr:
        """:meth:`window_day` for a column of UTC instants, with each row's cut-off time."""
        rows = pl.struct(instant.alias("at"), cutoff.alias("cutoff"))
        return rows.map_batches(self._window_days, return_dtype=pl.Date)

    def _window_days(self, rows: pl.Series) -> pl.Series:
        local = self._wall_clock(rows.struct.field("at")).cast(pl.Int64)
        cutoff = rows.struct.field("cutoff").cast(pl.Int64) // 1_000  # microseconds
        day = local // _DAY_US
        after = (local - day * _DAY_US) > cutoff
        return self._roll_forward((day + after.cast(pl.Int64)).cast(pl.Int32).cast(pl.Date))

    def _roll_forward(self, days: pl.Series) -> pl.Series:
        """Each date to the first publication day on or after it; a date with none that a
        calendar date can name (near the year 9999) has none."""
        numbers = days.cast(pl.Int32)  # days since 1970-01-01
        mapping: dict[int, int | None] = {}
        for n in numbers.unique().drop_nulls().to_list():
            try:
                day = self.next_publication_day(EPOCH + dt.timedelta(days=n), inclusive=True)
                mapping[n] = (day - EPOCH).days
            except (OverflowError, CalendarError):
                mapping[n] = None
        return numbers.replace_strict(mapping, default=None, return_dtype=pl.Int32).cast(pl.Date)

    def data_year(self, year: int, commodity: str | None = None) -> tuple[dt.datetime, dt.datetime]:
        """``(begin, end)``: the instants that bound the trades the weights effective in
        ``year`` are computed from, the year up to the announcement date.

        Cut at ``midnight`` (``rebalance.data_year_cut``) the year is ``[begin, end)``, local
        midnight to local midnight. Cut at the ``cutoff`` it is ``(begin, end]``, as an
        assessment window is: the windows of the publication days from the announcement
        date a year before up to the announcement date (exclusive), so from the cut-off of
        the last publication day before the one to the cut-off of the last publication day
        before the other (``commodity``'s cut-off, or the methodology's)."""
        rules = self.methodology.rebalance
        announced = rules.announcement_date(year)
        first = announced.replace(year=announced.year - 1)
        if rules.data_year_cut == "midnight":
            return self.at(first), self.at(announced)
        return (
            self.cutoff(self.previous_publication_day(first), commodity),
            self.cutoff(self.previous_publication_day(announced), commodity),
        )

    def rebalance_days(self, year: int) -> tuple[dt.date, dt.date]:
        """The publication days on which the weights effective in ``year`` are announced and
        put in force: the first on or after the methodology's dates."""
        rules = self.methodology.rebalance
        return (
            self.next_publication_day(rules.announcement_date(year), inclusive=True),
            self.next_publication_day(rules.effective_date(year), inclusive=True),
        )

    # -- horizon ---------------------------------------------------------------------------

    @property
    def complete_through(self) -> dt.date:
        """The last day the calendar can vouch for."""
        official = dt.date(self._official, 12, 31)
        covered = self.overrides.covered_through
        return max(official, covered) if covered else official

    def is_provisional(self, year: int) -> bool:
        """Is ``year`` known only by rule (no State Council notice in the package or the
        override file)? Always ``False`` under the ``weekdays`` rule or recorded days."""
        if self._recorded is not None or self.rules.rule == "weekdays":
            return False
        return dt.date(year, 12, 31) > self.complete_through

    def announced_provisional(self, today: dt.date) -> list[int]:
        """Provisional years to warn about on ``today``: this one, and from 1 November the
        next one."""
        years = [today.year]
        if (today.month, today.day) >= WARN_FROM:
            years.append(today.year + 1)
        return [y for y in years if self.is_provisional(y)]

    def _warn_provisional(self, year: int) -> None:
        with self._lock:
            if year in self._warned:
                return
            self._warned.add(year)
        log.warning(
            "publication calendar: %d is provisional (known through %s): the statutory holidays "
            "by rule, without the State Council's notice. Add the notice to BCPI_CALENDAR_FILE "
            "(covered_through = %d-12-31 once complete) or upgrade holidays (%s).",
            year,
            self.complete_through.isoformat(),
            year,
            holidays.__version__,
            extra={"year": year, "complete_through": self.complete_through.isoformat()},
        )

    def status(self, today: dt.date) -> dict[str, object]:
        """What operations need to know: the rule and source, how far it is complete, and
        the provisional years to announce (from 1 November of the year before)."""
        provisional = self.announced_provisional(today)
        for year in provisional:
            self._warn_provisional(year)
        return {
            "methodology_version": self.methodology.version,
            "rule": self.rules.rule,
            "source": f"holidays {holidays.__version__} (China)",
            "complete_through": self.complete_through.isoformat(),
            "days_to_horizon": (self.complete_through - today).days,
            "provisional_years": provisional,
            "override_holidays": len(self.overrides.holidays),
            "override_working_days": len(self.overrides.working_days),
            "warning": None
            if not provisional
            else f"publication days of {', '.join(map(str, provisional))} are provisional "
            "(statutory holidays by rule): add the State Council's notice to the calendar "
            "override file or upgrade the holidays package",
        }

    def year(self, year: int) -> CalendarYear:
        """Every publication day of ``year`` with the instant its fixing is computed."""
        days = self.publication_days(dt.date(year, 1, 1), dt.date(year, 12, 31))
        return CalendarYear(
            year,
            self.is_provisional(year),
            tuple(PublicationDay(d, self.fixing_at(d)) for d in days),
        )
