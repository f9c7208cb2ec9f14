"""The publication calendar against the State Council's notices and the Shanghai exchange."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import exchange_calendars
import polars as pl
import pytest
from typer.testing import CliRunner

from core.calendar import Calendar, CalendarOverrides, load_overrides
from core.errors import CalendarError
from core.methodology import in_force, load_methodology, superseded_by
from core.settings import Settings, parse_sessions

D = dt.date
SHANGHAI = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent


def _span(first: dt.date, last: dt.date) -> set[dt.date]:
    return {first + dt.timedelta(days=n) for n in range((last - first).days + 1)}


# 国务院办公厅关于2025年部分节假日安排的通知 (November 2024): days off, make-up working days.
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
WORK_2026 = {D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9)}
WORK_2026 |= {D(2026, 9, 20), D(2026, 10, 10)}


@pytest.fixture(scope="module")
def calendar() -> Calendar:
    return Calendar(in_force())


@pytest.mark.parametrize(
    ("year", "off", "work"), [(2025, OFF_2025, WORK_2025), (2026, OFF_2026, WORK_2026)]
)
def test_publication_days_follow_the_notice_without_make_up_days(calendar, year, off, work):
    days = _span(D(year, 1, 1), D(year, 12, 31))
    expected = {d for d in days if d.weekday() < 5 and d not in off}
    assert set(calendar.publication_days(D(year, 1, 1), D(year, 12, 31))) == expected
    assert not any(calendar.is_publication_day(d) for d in work)  # 调休 days stay closed


def test_publication_days_of_2025_and_2026_are_the_shanghai_exchange_sessions(calendar):
    xshg = exchange_calendars.get_calendar("XSHG")
    sessions = {t.date() for t in xshg.sessions_in_range("2025-01-01", "2026-12-31")}
    assert set(calendar.publication_days(D(2025, 1, 1), D(2026, 12, 31))) == sessions
    assert len(sessions) > 480


def test_neighbours_across_national_day(calendar):
    assert calendar.publication_days(D(2026, 9, 28), D(2026, 10, 12)) == [
        D(2026, 9, 28),
        D(2026, 9, 29),
        D(2026, 9, 30),
        D(2026, 10, 8),
        D(2026, 10, 9),
        D(2026, 10, 12),
    ]
    assert calendar.next_publication_day(D(2026, 10, 1), inclusive=True) == D(2026, 10, 8)
    assert calendar.next_publication_day(D(2026, 9, 30)) == D(2026, 10, 8)
    assert calendar.previous_publication_day(D(2026, 10, 8)) == D(2026, 9, 30)
    assert calendar.publication_days_before(D(2026, 10, 11), 3) == D(2026, 9, 30)


def test_cut_off_window_and_fixing_instants(calendar):
    assert calendar.cutoff(D(2026, 10, 8)) == dt.datetime(2026, 10, 8, 15, tzinfo=SHANGHAI)
    assert calendar.fixing_at(D(2026, 10, 8)) == dt.datetime(2026, 10, 8, 15, tzinfo=SHANGHAI)
    opens_after, closes_at = calendar.window(D(2026, 10, 8))
    assert opens_after == dt.datetime(2026, 9, 30, 15, tzinfo=SHANGHAI)
    assert closes_at == dt.datetime(2026, 10, 8, 15, tzinfo=SHANGHAI)
    assert calendar.sessions(D(2026, 10, 8)) == [
        (
            dt.datetime(2026, 10, 8, 9, tzinfo=SHANGHAI),
            dt.datetime(2026, 10, 8, 15, tzinfo=SHANGHAI),
        )
    ]
    assert calendar.sessions(D(2026, 10, 10)) == []  # a make-up Saturday


@pytest.mark.parametrize(
    ("local", "day"),
    [
        (dt.datetime(2026, 10, 9, 15, 0, 0), D(2026, 10, 9)),  # the cut-off itself: inside
        (dt.datetime(2026, 10, 9, 15, 0, 0, 1000), D(2026, 10, 12)),  # a millisecond after
        (dt.datetime(2026, 10, 10, 11, 0), D(2026, 10, 12)),  # make-up Saturday: Monday's
        (dt.datetime(2026, 10, 1, 10, 0), D(2026, 10, 8)),  # National Day
        (dt.datetime(2026, 9, 30, 16, 0), D(2026, 10, 8)),  # after the last cut-off before it
        (dt.datetime(2026, 2, 14, 10, 0), D(2026, 2, 24)),  # Spring Festival's make-up day
    ],
)
def test_a_trade_belongs_to_the_next_window_that_holds_it(calendar, local, day):
    instant = local.replace(tzinfo=SHANGHAI).astimezone(dt.UTC)
    assert calendar.window_day(instant) == day
    opens_after, closes_at = calendar.window(day)
    assert opens_after < instant <= closes_at
    column = pl.Series([instant], dtype=pl.Datetime("us", "UTC"))
    frame = pl.DataFrame({"at": column}).select(
        calendar.window_day_expr(pl.col("at"), pl.lit(dt.time(15, 0))).alias("day")
    )
    assert frame["day"].to_list() == [day]


def test_the_fixing_waits_for_the_latest_cut_off_of_any_commodity():
    methodology = load_methodology("2025.2")  # no reporting grace: the fixing at the cut-off
    later = methodology.assessment.commodities["COTTON"].model_copy(
        update={"cutoff": dt.time(16, 30)}
    )
    commodities = {**methodology.assessment.commodities, "COTTON": later}
    assessment = methodology.assessment.model_copy(update={"commodities": commodities})
    calendar = Calendar(methodology.model_copy(update={"assessment": assessment}))
    day = D(2026, 10, 9)
    assert calendar.cutoff(day, "COTTON") == dt.datetime(2026, 10, 9, 16, 30, tzinfo=SHANGHAI)
    assert calendar.cutoff(day, "REBAR") == dt.datetime(2026, 10, 9, 15, tzinfo=SHANGHAI)
    assert calendar.fixing_at(day) == dt.datetime(2026, 10, 9, 16, 30, tzinfo=SHANGHAI)


def test_the_defective_2025_1_calendar_published_on_holidays_and_2025_2_corrects_it():
    old, new = Calendar(load_methodology("2025.1")), Calendar(load_methodology("2025.2"))
    holidays = [d for d in _span(D(2025, 1, 1), D(2026, 12, 31)) if d.weekday() < 5]
    holidays = [d for d in holidays if d in OFF_2025 | OFF_2026]
    assert len(holidays) == 37  # 36 from the base date (2 January 2025) on
    assert all(old.is_publication_day(d) for d in holidays)
    assert not any(new.is_publication_day(d) for d in holidays)
    assert superseded_by(load_methodology("2025.2")) == {"2025.1"}
    assert in_force(D(2026, 11, 30)).version == "2025.2"


def test_a_year_past_the_notices_goes_on_by_rule_provisionally_and_warns_once(caplog):
    calendar = Calendar(in_force(), vouched_through=2026)
    assert not calendar.is_provisional(2026)
    assert calendar.is_provisional(2027)
    with caplog.at_level(logging.WARNING, logger="bcpi.calendar"):
        assert not calendar.is_publication_day(D(2027, 1, 1))  # New Year's Day, by rule
        assert calendar.is_publication_day(D(2027, 1, 4))
        days = calendar.publication_days(D(2027, 1, 1), D(2027, 12, 31))
    assert 230 < len(days) < 255
    warnings = [r for r in caplog.records if "2027 is provisional" in r.getMessage()]
    assert len(warnings) == 1
    assert "BCPI_CALENDAR_FILE" in warnings[0].getMessage()
    assert calendar.year(2027).provisional is True
    assert calendar.year(2026).provisional is False


def test_the_provisional_year_is_announced_from_the_first_of_november_before():
    calendar = Calendar(in_force(), vouched_through=2026)
    assert calendar.status(D(2026, 10, 31))["provisional_years"] == []
    assert calendar.status(D(2026, 10, 31))["warning"] is None
    status = calendar.status(D(2026, 11, 1))
    assert status["provisional_years"] == [2027]
    assert "2027" in status["warning"]
    assert calendar.status(D(2027, 3, 1))["provisional_years"] == [2027]


def test_an_override_file_adds_days_and_declares_a_year_complete(tmp_path, caplog):
    path = tmp_path / "calendar.toml"
    path.write_text(
        "# the 2027 notice, before the package has it\n"
        "covered_through = 2027-12-31\n"
        "holidays = [2027-02-11, 2027-02-12]\n"
        "working_days = [2027-01-01]\n",
        encoding="utf-8",
    )
    calendar = Calendar(in_force(), load_overrides(path), vouched_through=2026)
    assert not calendar.is_provisional(2027)
    assert calendar.status(D(2026, 11, 26))["warning"] is None
    with caplog.at_level(logging.WARNING, logger="bcpi.calendar"):
        assert not calendar.is_publication_day(D(2027, 2, 11))
        assert calendar.is_publication_day(D(2027, 1, 1))  # the operator's removal wins
        assert calendar.is_publication_day(D(2027, 2, 15))
    assert not [r for r in caplog.records if "provisional" in r.getMessage()]
    settings = Settings(calendar_file=path)
    assert Calendar.from_settings(settings).overrides == load_overrides(path)


def test_contradictory_or_malformed_overrides_are_refused_clearly(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("holidays = [2027-02-20]\nworking_days = [2027-02-20]\n", encoding="utf-8")
    with pytest.raises(CalendarError, match="2027-02-20 both as holiday and working day"):
        load_overrides(bad)
    bad.write_text('holidays = ["2027-02-11"]\n', encoding="utf-8")
    with pytest.raises(CalendarError, match="holidays must be a list of dates"):
        load_overrides(bad)
    bad.write_text("holiday = [2027-02-11]\n", encoding="utf-8")
    with pytest.raises(CalendarError, match="unknown keys"):
        load_overrides(bad)
    with pytest.raises(CalendarError, match=r"missing\.toml"):
        load_overrides(tmp_path / "missing.toml")


def test_a_failing_holiday_source_falls_back_to_weekdays_with_an_error(monkeypatch, caplog):
    import core.calendar

    def broken(**_):
        raise RuntimeError("no data")

    core.calendar._china.cache_clear()
    monkeypatch.setattr(core.calendar.holidays, "China", broken)
    try:
        calendar = Calendar(in_force(), vouched_through=2026)
        with caplog.at_level(logging.ERROR, logger="bcpi.calendar"):
            assert calendar.is_publication_day(D(2028, 1, 3))
            assert not calendar.is_publication_day(D(2028, 1, 1))  # a Saturday
    finally:
        core.calendar._china.cache_clear()
    assert any("failed for 2028" in r.getMessage() for r in caplog.records)


def test_recorded_days_replace_the_rule():
    days = [D(2026, 10, 8), D(2026, 10, 10)]
    recorded = Calendar(in_force(), days=days)
    assert recorded.publication_days(D(2026, 10, 1), D(2026, 10, 31)) == days
    assert not recorded.is_provisional(2040)


def test_trading_sessions_parse_and_refuse_nonsense():
    assert parse_sessions("09:00-11:30, 13:30-15:00") == (
        (dt.timedelta(hours=9), dt.timedelta(hours=11, minutes=30)),
        (dt.timedelta(hours=13, minutes=30), dt.timedelta(hours=15)),
    )
    assert parse_sessions("00:00-24:00") == ((dt.timedelta(0), dt.timedelta(days=1)),)
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
    overrides = load_overrides(ROOT / "deploy" / "calendar.example.toml")
    assert overrides.covered_through == D(2027, 12, 31)
    assert overrides == CalendarOverrides(covered_through=D(2027, 12, 31))


def test_bcpi_calendar_prints_what_the_api_answers(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from cli.main import app as cli
    from core.settings import get_settings

    url = f"sqlite:///{tmp_path / 'calendar.db'}"
    monkeypatch.setenv("BCPI_DATABASE_URL", url)
    monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(tmp_path / "archive"))
    get_settings.cache_clear()
    try:
        printed = CliRunner().invoke(cli, ["calendar", "2026"])
        assert printed.exit_code == 0, printed.output
        with TestClient(create_app(Settings(database_url=url))) as client:
            answered = client.get("/v1/calendar", params={"year": 2026})
            refused = client.get("/v1/calendar", params={"year": 1999})
    finally:
        get_settings.cache_clear()
    assert answered.status_code == 200
    assert json.loads(printed.stdout) == answered.json()
    year = answered.json()
    assert year["year"] == 2026 and year["provisional"] is False
    days = [d["date"] for d in year["days"]]
    xshg = exchange_calendars.get_calendar("XSHG")
    assert days == [
        t.date().isoformat() for t in xshg.sessions_in_range("2026-01-01", "2026-12-31")
    ]
    # 2025.2 fixes at the cut-off; from 1 December, 2026.1 five minutes after it (its
    # reporting grace).
    fixing = {d["date"]: d["fixing_at"] for d in year["days"]}
    assert fixing["2026-11-30"] == "2026-11-30T15:00:00+08:00"
    assert fixing["2026-12-01"] == "2026-12-01T15:05:00+08:00"
    assert all(at[10:] == "T15:00:00+08:00" for day, at in fixing.items() if day < "2026-12-01")
    assert all(at[10:] == "T15:05:00+08:00" for day, at in fixing.items() if day >= "2026-12-01")
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "year"


def test_local_times_of_a_column_match_the_zone_rule_by_rule(calendar):
    """Instants from 1900 to 2100, Shanghai's summer times of 1940–1949 and 1986–1991 among
    them, and every instant an hour either side of each of those transitions: each local
    time is what Python's zoneinfo says, one instant at a time."""
    rng = random.Random(20261204)
    low = dt.datetime(1900, 1, 1, tzinfo=dt.UTC).timestamp()
    high = dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp()
    instants = [
        dt.datetime.fromtimestamp(rng.uniform(low, high), dt.UTC).replace(microsecond=0)
        for _ in range(20_000)
    ]
    probe = dt.datetime(1940, 1, 1, tzinfo=dt.UTC)
    while probe < dt.datetime(1992, 1, 1, tzinfo=dt.UTC):
        after = probe + dt.timedelta(hours=1)
        if probe.astimezone(SHANGHAI).utcoffset() != after.astimezone(SHANGHAI).utcoffset():
            instants += [probe + dt.timedelta(minutes=m) for m in range(0, 61, 5)]
        probe = after
    column = pl.Series("at", instants, dtype=pl.Datetime("us", "UTC"))
    local = pl.DataFrame({"at": column}).select(calendar.local_time_expr(pl.col("at")))["at"]
    expected = [i.astimezone(SHANGHAI).replace(tzinfo=None) for i in instants]
    assert local.to_list() == expected
    assert len(instants) > 20_000  # the transitions were found and probed
