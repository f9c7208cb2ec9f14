"""The mainland China trading calendar against the State Council's published schedules."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from bcpi.calendar import (
    TradingCalendar,
    calendar_from_settings,
    load_overrides,
    parse_sessions,
)
from bcpi.errors import CalendarError
from bcpi.settings import Settings

D = dt.date


def _span(first: dt.date, last: dt.date) -> set[dt.date]:
    return {first + dt.timedelta(days=n) for n in range((last - first).days + 1)}


# 国务院办公厅关于2025年部分节假日安排的通知 (November 2024): days off and make-up working days.
OFF_2025 = (
    {D(2025, 1, 1)}
    | _span(D(2025, 1, 28), D(2025, 2, 4))
    | _span(D(2025, 4, 4), D(2025, 4, 6))
    | _span(D(2025, 5, 1), D(2025, 5, 5))
    | _span(D(2025, 5, 31), D(2025, 6, 2))
    | _span(D(2025, 10, 1), D(2025, 10, 8))
)
WORK_2025 = {D(2025, 1, 26), D(2025, 2, 8), D(2025, 4, 27), D(2025, 9, 28), D(2025, 10, 11)}

# 国务院办公厅关于2026年部分节假日安排的通知 (November 2025).
OFF_2026 = (
    _span(D(2026, 1, 1), D(2026, 1, 3))
    | _span(D(2026, 2, 15), D(2026, 2, 23))
    | _span(D(2026, 4, 4), D(2026, 4, 6))
    | _span(D(2026, 5, 1), D(2026, 5, 5))
    | _span(D(2026, 6, 19), D(2026, 6, 21))
    | _span(D(2026, 9, 25), D(2026, 9, 27))
    | _span(D(2026, 10, 1), D(2026, 10, 7))
)
WORK_2026 = {
    D(2026, 1, 4),
    D(2026, 2, 14),
    D(2026, 2, 28),
    D(2026, 5, 9),
    D(2026, 9, 20),
    D(2026, 10, 10),
}


def _expected(day: dt.date, off: set[dt.date], work: set[dt.date]) -> bool:
    return day in work or (day.weekday() < 5 and day not in off)


@pytest.mark.parametrize(
    ("year", "off", "work"), [(2025, OFF_2025, WORK_2025), (2026, OFF_2026, WORK_2026)]
)
def test_every_day_of_a_published_year_matches_the_state_council_notice(year, off, work):
    calendar = TradingCalendar()
    wrong = [
        day
        for day in _span(D(year, 1, 1), D(year, 12, 31))
        if calendar.is_trading_day(day) != _expected(day, off, work)
    ]
    assert wrong == []


def test_make_up_working_days_can_be_left_out_as_the_exchanges_do():
    exchanges_calendar = TradingCalendar(make_up_days_trade=False)
    assert not exchanges_calendar.is_trading_day(D(2026, 9, 20))  # a make-up Sunday
    assert not exchanges_calendar.is_trading_day(D(2026, 10, 10))  # a make-up Saturday
    assert exchanges_calendar.is_trading_day(D(2026, 10, 9))


def test_trading_days_and_neighbours_across_national_day():
    calendar = TradingCalendar()
    assert calendar.trading_days(D(2026, 9, 28), D(2026, 10, 12)) == [
        D(2026, 9, 28),
        D(2026, 9, 29),
        D(2026, 9, 30),
        D(2026, 10, 8),
        D(2026, 10, 9),
        D(2026, 10, 10),
        D(2026, 10, 12),
    ]
    assert calendar.next_trading_day(D(2026, 10, 1)) == D(2026, 10, 8)
    assert calendar.previous_trading_day(D(2026, 10, 7)) == D(2026, 9, 30)
    assert calendar.next_trading_day(D(2026, 9, 30), inclusive=False) == D(2026, 10, 8)


def test_past_the_horizon_it_warns_once_and_keeps_going(caplog):
    assert TradingCalendar().horizon >= D(2026, 12, 31)  # the last notice the package carries
    calendar = TradingCalendar(official_through=D(2026, 12, 31))
    with caplog.at_level(logging.WARNING, logger="bcpi.calendar"):
        assert not calendar.is_trading_day(D(2027, 1, 1))  # New Year's Day, by rule
        assert calendar.is_trading_day(D(2027, 1, 4))
        days = calendar.trading_days(D(2027, 1, 1), D(2027, 12, 31))
    assert 230 < len(days) < 260
    warnings = [r for r in caplog.records if "past 2026-12-31" in r.getMessage()]
    assert len(warnings) == 1
    assert "BCPI_CALENDAR_EXTRA_HOLIDAYS" in warnings[0].getMessage()
    status = calendar.status(D(2026, 11, 26))
    assert status["days_to_horizon"] == 35
    assert "2026-12-31" in status["warning"]


def test_a_failing_holiday_source_falls_back_to_weekdays(monkeypatch, caplog):
    import bcpi.calendar

    def broken(year):
        raise RuntimeError("no data")

    monkeypatch.setattr(bcpi.calendar, "_china", broken)
    calendar = TradingCalendar(official_through=D(2026, 12, 31))
    with caplog.at_level(logging.ERROR, logger="bcpi.calendar"):
        assert calendar.is_trading_day(D(2028, 1, 3))
        assert not calendar.is_trading_day(D(2028, 1, 1))  # a Saturday
    assert any("failed for 2028" in r.getMessage() for r in caplog.records)


def test_overrides_win_over_the_package_and_may_declare_coverage(tmp_path, caplog):
    path = tmp_path / "calendar.toml"
    path.write_text(
        "# the 2027 notice, before the package has it\n"
        "covered_through = 2027-12-31\n"
        "holidays = [2027-02-11, 2027-02-12]\n"
        "working_days = [2027-02-20]\n",
        encoding="utf-8",
    )
    settings = Settings(
        calendar_file=path,
        calendar_extra_holidays=[D(2027, 6, 7)],
        calendar_extra_working_days=[D(2026, 10, 3)],
    )
    calendar = calendar_from_settings(settings)
    calendar.official_through = D(2026, 12, 31)
    assert calendar.horizon == D(2027, 12, 31)
    with caplog.at_level(logging.WARNING, logger="bcpi.calendar"):
        assert not calendar.is_trading_day(D(2027, 2, 11))
        assert not calendar.is_trading_day(D(2027, 6, 7))
        assert calendar.is_trading_day(D(2027, 2, 20))  # a Saturday, declared worked
        assert calendar.is_trading_day(D(2026, 10, 3))  # overrides beat the package
    assert not [r for r in caplog.records if "past" in r.getMessage()]


def test_overrides_from_the_environment(monkeypatch):
    monkeypatch.setenv("BCPI_CALENDAR_EXTRA_HOLIDAYS", '["2026-12-31"]')
    monkeypatch.setenv("BCPI_CALENDAR_MAKE_UP_DAYS_TRADE", "false")
    calendar = calendar_from_settings(Settings())
    assert not calendar.is_trading_day(D(2026, 12, 31))
    assert not calendar.is_trading_day(D(2026, 10, 10))


def test_contradictory_or_malformed_overrides_are_refused_clearly(tmp_path):
    with pytest.raises(CalendarError, match="2027-02-20 both as holiday and as working day"):
        TradingCalendar(
            extra_holidays=frozenset({D(2027, 2, 20)}),
            extra_working_days=frozenset({D(2027, 2, 20)}),
        )
    bad = tmp_path / "bad.toml"
    bad.write_text('holidays = ["2027-02-11"]\n', encoding="utf-8")
    with pytest.raises(CalendarError, match="holidays must be a list of dates"):
        load_overrides(bad)
    bad.write_text("holiday = [2027-02-11]\n", encoding="utf-8")
    with pytest.raises(CalendarError, match="unknown keys"):
        load_overrides(bad)
    with pytest.raises(CalendarError, match=r"missing\.toml"):
        load_overrides(tmp_path / "missing.toml")


def test_trading_sessions_parse_and_refuse_nonsense():
    assert parse_sessions("09:00-11:30, 13:30-15:00") == [
        (dt.timedelta(hours=9), dt.timedelta(hours=11, minutes=30)),
        (dt.timedelta(hours=13, minutes=30), dt.timedelta(hours=15)),
    ]
    assert parse_sessions("00:00-24:00") == [(dt.timedelta(0), dt.timedelta(days=1))]
    for text, reason in [
        ("9-15", "not HH:MM-HH:MM"),
        ("15:00-09:00", "ends before it starts"),
        ("09:00-12:00,11:00-15:00", "overlaps"),
        ("09:00-24:30", "impossible time"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_sessions(text)
    with pytest.raises(ValueError, match="trading_hours"):
        Settings(trading_hours="9-15")


def test_the_deployment_example_override_file_loads():
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "deploy" / "calendar.example.toml"
    overrides = load_overrides(example)
    assert overrides.covered_through == D(2027, 12, 31)
    assert overrides.holidays == overrides.working_days == frozenset()
