"""Transforms of a value and an earlier one (change, pct_change, log_return, yoy): the
points without an earlier value stay in the answer with a null value, in every format; yoy
against the slow reference, across leap days, holidays and ``as_of``."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import polars as pl
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests import naive_series as naive
from tests.publication_data import T0, level, publish_index, weekdays

# Holidays: no value on these weekdays (the Spring Festival week of 2023 and a Friday).
HOLIDAYS = {dt.date(2023, 1, 23) + dt.timedelta(days=n) for n in range(5)} | {dt.date(2023, 3, 3)}
DAYS = [d for d in weekdays(dt.date(2023, 1, 2), 560) if d not in HOLIDAYS]
VALUES = {day: level(day) for day in DAYS}
# ISO 2020 has 53 weeks; 2019 and 2021 have 52.
WEEK_53_DAYS = weekdays(dt.date(2019, 6, 3), 460)
URL = "/v1/indices/BCPI/series"
FREQUENCIES = ["daily", "weekly", "monthly", "quarterly", "annual"]


@pytest.fixture
def client(engine, database_url):
    publish_index(engine, "BCPI", VALUES, now=T0)
    publish_index(engine, "BCPI-AGR", {d: level(d) for d in WEEK_53_DAYS}, now=T0)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client


def _points(client, url=URL, **params):
    answer = client.get(url, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["points"]


def _by_date(points):
    return {p["date"]: p["value"] for p in points}


def _reference(values: dict, frequency: str, transform: str):
    points = [{"date": d, "value": v} for d, v in values.items()]
    if frequency != "daily":
        points = naive.collapse(points, frequency)
    if transform == "yoy":
        expected = naive.yoy(points, frequency)
    else:
        expected = naive.transform([p["value"] for p in points], transform)
    return [(p["date"].isoformat(), v) for p, v in zip(points, expected, strict=True)]


def _check(points, expected, label):
    assert [p["date"] for p in points] == [d for d, _ in expected], label
    for point, (day, value) in zip(points, expected, strict=True):
        if value is None:
            assert point["value"] is None, (label, day)
        else:
            assert point["value"] == pytest.approx(value, rel=1e-12), (label, day)


def test_yoy_matches_the_reference_in_every_frequency_and_order(client):
    for frequency, order in itertools.product(FREQUENCIES, ["asc", "desc"]):
        points = _points(client, frequency=frequency, transform="yoy", order=order)
        expected = _reference(VALUES, frequency, "yoy")
        if order == "desc":
            expected = expected[::-1]
        _check(points, expected, (frequency, order))


def test_yoy_by_hand_leap_day_holidays_and_the_first_year(client):
    got = _by_date(_points(client, transform="yoy"))

    def yoy(day, reference):
        return 100.0 * (VALUES[day] / VALUES[reference] - 1.0)

    # 29 February 2024 against 28 February 2023.
    leap = dt.date(2024, 2, 29)
    assert got[leap.isoformat()] == pytest.approx(yoy(leap, dt.date(2023, 2, 28)), rel=1e-12)
    # 23 January 2023 was a holiday: the Friday before it.
    day = dt.date(2024, 1, 23)
    assert got[day.isoformat()] == pytest.approx(yoy(day, dt.date(2023, 1, 20)), rel=1e-12)
    # 4 March 2023 was a Saturday and 3 March a holiday: Thursday 2 March.
    day = dt.date(2024, 3, 4)
    assert got[day.isoformat()] == pytest.approx(yoy(day, dt.date(2023, 3, 2)), rel=1e-12)
    # The first year has nothing a year before it: its points are there, without a value.
    first_year = [d for d in DAYS if d < dt.date(2024, 1, 2)]
    assert all(got[d.isoformat()] is None for d in first_year)
    assert len(got) == len(DAYS)
    # 1 January 2024: 1 January 2023 was a Sunday before the first value.
    assert got["2024-01-01"] is None
    assert got["2024-01-02"] == pytest.approx(
        yoy(dt.date(2024, 1, 2), dt.date(2023, 1, 2)), rel=1e-12
    )


def test_weekly_yoy_of_iso_week_53_is_against_the_last_week_of_the_year_before(client):
    url = "/v1/indices/BCPI-AGR/series"
    points = _points(client, url, frequency="weekly", transform="yoy")
    values = {d: level(d) for d in WEEK_53_DAYS}
    _check(points, _reference(values, "weekly", "yoy"), "weekly")
    week_53 = [
        p for p in points if dt.date.fromisoformat(p["date"]).isocalendar()[:2] == (2020, 53)
    ]
    assert len(week_53) == 1 and week_53[0]["value"] is not None
    last_of_2019 = max(d for d in WEEK_53_DAYS if d.isocalendar()[:2] == (2019, 52))
    this = dt.date.fromisoformat(week_53[0]["date"])
    want = 100.0 * (values[this] / values[last_of_2019] - 1.0)
    assert week_53[0]["value"] == pytest.approx(want, rel=1e-12)


def test_references_are_taken_within_the_requested_range(client):
    start = dt.date(2023, 6, 1)
    points = _points(client, transform="yoy", start=start)
    kept = {d: v for d, v in VALUES.items() if d >= start}
    _check(points, _reference(kept, "daily", "yoy"), "start")
    assert points[0]["value"] is None
    change = _points(client, transform="change", start=start, end=dt.date(2023, 6, 5))
    assert [p["value"] for p in change] == [
        None,
        pytest.approx(VALUES[dt.date(2023, 6, 2)] - VALUES[dt.date(2023, 6, 1)]),
        pytest.approx(VALUES[dt.date(2023, 6, 5)] - VALUES[dt.date(2023, 6, 2)]),
    ]


def test_yoy_as_of_uses_the_reference_as_it_was_published_then(client, engine):
    reference, day = dt.date(2023, 5, 2), dt.date(2024, 5, 2)
    later = T0 + dt.timedelta(days=2)
    publish_index(engine, "BCPI", {reference: VALUES[reference] * 2}, now=later)
    before = _by_date(_points(client, transform="yoy", as_of=T0.isoformat()))
    now = _by_date(_points(client, transform="yoy"))
    assert before[day.isoformat()] == pytest.approx(
        100.0 * (VALUES[day] / VALUES[reference] - 1.0), rel=1e-12
    )
    assert now[day.isoformat()] == pytest.approx(
        100.0 * (VALUES[day] / (VALUES[reference] * 2) - 1.0), rel=1e-12
    )


@pytest.mark.parametrize("transform", ["change", "pct_change", "log_return"])
@pytest.mark.parametrize("frequency", ["daily", "monthly"])
def test_step_transforms_match_the_reference_with_a_null_first_point(client, transform, frequency):
    expected = _reference(VALUES, frequency, transform)
    assert expected[0][1] is None
    _check(_points(client, frequency=frequency, transform=transform), expected, "asc")
    desc = _points(client, frequency=frequency, transform=transform, order="desc")
    _check(desc, expected[::-1], "desc")


def _frame(client, fmt, **params):
    answer = client.get(URL, params={"format": fmt, **params})
    assert answer.status_code == 200, answer.text
    if fmt == "csv":
        return answer.text, pl.read_csv(
            io.BytesIO(answer.content), try_parse_dates=True, infer_schema_length=None
        )
    if fmt == "parquet":
        return None, pl.read_parquet(io.BytesIO(answer.content))
    if fmt == "arrow":
        return None, pl.from_arrow(pa.ipc.open_stream(answer.content).read_all())
    points = answer.json()["points"]
    return None, pl.DataFrame(points, infer_schema_length=None).with_columns(
        pl.col("date").str.to_date()
    )


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet", "arrow"])
def test_every_format_marks_what_a_transform_cannot_compute_as_null(client, fmt):
    end = dt.date(2024, 1, 31)
    text, frame = _frame(client, fmt, transform="yoy", end=end)
    expected = _reference({d: v for d, v in VALUES.items() if d <= end}, "daily", "yoy")
    assert frame.height == len(expected)
    assert frame["value"].null_count() == sum(v is None for _, v in expected)
    assert frame["value"].dtype == pl.Float64
    for value, (_, want) in zip(frame["value"].to_list(), expected, strict=True):
        assert value == (None if want is None else pytest.approx(want, rel=1e-12))
    if fmt == "csv":
        first = text.splitlines()[1].split(",")
        assert first[:3] == [DAYS[0].isoformat(), "", "final"]  # an empty cell, no text


def test_yoy_with_limit_is_the_head_of_the_whole_answer(client):
    whole = _points(client, transform="yoy", order="desc")
    assert _points(client, transform="yoy", order="desc", limit=7) == whole[:7]
    ascending = _points(client, transform="yoy")
    assert _points(client, transform="yoy", limit=300) == ascending[:300]


def test_yoy_is_refused_for_intraday_naming_the_field(client):
    answer = client.get(URL, params={"transform": "yoy", "frequency": "intraday"})
    assert answer.status_code == 422
    assert "transform" in answer.text and "intraday" in answer.text
