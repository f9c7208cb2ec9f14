"""Series over HTTP: frequencies, transforms, order, limit, as_of, and every format."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import math

import polars as pl
import pytest
from fastapi.testclient import TestClient

from api import series as series_module
from api.app import create_app
from core.methodology import in_force
from core.settings import Settings
from publication.vintage import Restating, withdraw_vintages
from store import models
from store.db import session_scope
from tests import naive_series as naive
from tests.publication_data import T0, level, publish_assessments, publish_index, weekdays

DAYS = weekdays(dt.date(2023, 1, 2), 560)  # more than two years: every period kind occurs
VALUES = {day: level(day) for day in DAYS}


def _assessment_points():
    points = []
    for n, day in enumerate(DAYS[:200]):
        price = level(day) * 3
        points.append(
            {
                "date": day,
                "price": price,
                "trades": 3 + n % 5,
                "volume": 100.0 + n,
                "high": price * 1.01,
                "low": price * 0.99,
                "fallback": "=HYPERLINK(evil)" if n == 7 else ("none" if n % 9 else "carried"),
            }
        )
    return points


@pytest.fixture
def client(engine, database_url):
    publish_index(engine, "BCPI", VALUES, now=T0)
    publish_assessments(engine, "COTTON", _assessment_points(), now=T0)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client


def _json_points(client, url, **params):
    answer = client.get(url, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["points"]


def _expected(frequency, transform, points=None):
    points = points or [{"date": d, "value": v, "status": "final"} for d, v in VALUES.items()]
    if frequency != "daily":
        points = naive.collapse(points, frequency)
    if transform == "yoy":
        values = naive.yoy(points, frequency)
    else:
        values = naive.transform([p["value"] for p in points], transform)
    return [(p["date"].isoformat(), v) for p, v in zip(points, values, strict=True)]


def _same_values(points, expected, label):
    assert [p["date"] for p in points] == [d for d, _ in expected], label
    for point, (_, value) in zip(points, expected, strict=True):
        if value is None:
            assert point["value"] is None, (label, point)
        else:
            assert point["value"] == pytest.approx(value, rel=1e-12, abs=1e-12), (label, point)


def test_daily_series_is_every_stored_value_with_its_status(client):
    body = client.get("/v1/indices/BCPI/series").json()
    assert body["code"] == "BCPI" and body["frequency"] == "daily"
    assert body["transform"] == "level" and body["as_of"] is None
    assert [(p["date"], p["value"], p["status"]) for p in body["points"]] == [
        (d.isoformat(), v, "final") for d, v in VALUES.items()
    ]


def test_frequency_and_transform_match_the_reference(client):
    for frequency, transform in itertools.product(
        ["daily", "weekly", "monthly", "quarterly", "annual"],
        ["level", "change", "pct_change", "log_return", "yoy", "rebase"],
    ):
        points = _json_points(
            client, "/v1/indices/BCPI/series", frequency=frequency, transform=transform
        )
        _same_values(points, _expected(frequency, transform), (frequency, transform))


@pytest.mark.parametrize("frequency", ["weekly", "quarterly"])
def test_collapsed_points_carry_open_high_low_close(client, frequency):
    points = _json_points(client, "/v1/indices/BCPI/series", frequency=frequency)
    reference = naive.collapse([{"date": d, "value": v} for d, v in VALUES.items()], frequency)
    assert len(points) == len(reference)
    for point, want in zip(points, reference, strict=True):
        assert point["date"] == want["date"].isoformat()
        for field in ("open", "high", "low", "close"):
            assert point[field] == want[field], field
        assert point["value"] == point["close"]


def test_range_order_and_limit(client):
    start, end = DAYS[10], DAYS[40]
    asc = _json_points(client, "/v1/indices/BCPI/series", start=start, end=end)
    assert [p["date"] for p in asc] == [d.isoformat() for d in DAYS[10:41]]
    desc = _json_points(client, "/v1/indices/BCPI/series", start=start, end=end, order="desc")
    assert desc == asc[::-1]
    latest = _json_points(client, "/v1/indices/BCPI/series", order="desc", limit=1)
    assert latest == [
        {"date": DAYS[-1].isoformat(), "value": VALUES[DAYS[-1]], "status": "final", "flags": []}
    ]
    first_three = _json_points(client, "/v1/indices/BCPI/series", limit=3)
    assert [p["date"] for p in first_three] == [d.isoformat() for d in DAYS[:3]]


def test_rebase_starts_at_100_at_start(client):
    points = _json_points(
        client, "/v1/indices/BCPI/series", start=DAYS[100], transform="rebase", order="desc"
    )
    assert points[-1]["date"] == DAYS[100].isoformat()
    assert points[-1]["value"] == pytest.approx(100.0, rel=1e-15)
    assert points[0]["value"] == pytest.approx(100 * VALUES[DAYS[-1]] / VALUES[DAYS[100]])


@pytest.mark.parametrize("partition", [1, 7])
def test_partitioned_reading_gives_the_same_answer(client, monkeypatch, partition):
    """Periods and previous values carried across partitions, in both orders."""
    whole = {}
    cases = list(
        itertools.product(
            ["daily", "weekly", "monthly"], ["level", "change", "yoy", "rebase"], ["asc", "desc"]
        )
    )
    for frequency, transform, order in cases:
        params = {"frequency": frequency, "transform": transform, "order": order}
        whole[frequency, transform, order] = client.get(
            "/v1/indices/BCPI/series", params={**params, "end": DAYS[400]}
        ).json()
    monkeypatch.setattr(series_module, "PARTITION_ROWS", partition)
    for (frequency, transform, order), expected in whole.items():
        params = {"frequency": frequency, "transform": transform, "order": order}
        got = client.get("/v1/indices/BCPI/series", params={**params, "end": DAYS[400]}).json()
        assert got == expected, (frequency, transform, order)
        limited = client.get(
            "/v1/indices/BCPI/series", params={**params, "end": DAYS[400], "limit": 5}
        ).json()
        assert limited["points"] == expected["points"][:5], (frequency, transform, order)


def _frame(client, fmt, how):
    url = "/v1/indices/BCPI/series"
    if how == "query":
        answer = client.get(url, params={"format": fmt})
    else:
        media = {
            "csv": "text/csv",
            "parquet": "application/vnd.apache.parquet",
            "arrow": "application/vnd.apache.arrow.stream",
            "json": "application/json",
        }[fmt]
        answer = client.get(url, headers={"Accept": media})
    assert answer.status_code == 200, answer.text
    content = answer.content
    if fmt == "csv":
        assert answer.headers["content-type"].startswith("text/csv")
        schema = {"date": pl.Date, "value": pl.Float64, "status": pl.String, "flags": pl.String}
        frame = pl.read_csv(io.BytesIO(content), schema=schema)
        return frame.with_columns(  # CSV carries the flags as text: none is an empty cell
            pl.col("flags")
            .fill_null("")
            .str.split(" ")
            .list.eval(pl.element().filter(pl.element() != ""))
        )
    if fmt == "parquet":
        assert answer.headers["content-type"] == "application/vnd.apache.parquet"
        return pl.read_parquet(io.BytesIO(content))
    if fmt == "arrow":
        assert answer.headers["content-type"] == "application/vnd.apache.arrow.stream"
        return pl.read_ipc_stream(io.BytesIO(content))
    return pl.DataFrame(answer.json()["points"]).with_columns(
        pl.col("date").str.to_date(), pl.col("flags").cast(pl.List(pl.String))
    )


def test_every_format_round_trips_into_polars_with_identical_values(client):
    # The test values never move by 10% from one day to the next: no value is flagged.
    expected = pl.DataFrame(
        {
            "date": list(VALUES),
            "value": list(VALUES.values()),
            "status": ["final"] * len(VALUES),
            "flags": [[]] * len(VALUES),
        },
        schema={
            "date": pl.Date,
            "value": pl.Float64,
            "status": pl.String,
            "flags": pl.List(pl.String),
        },
    )
    for fmt, how in itertools.product(["json", "csv", "parquet", "arrow"], ["query", "accept"]):
        frame = _frame(client, fmt, how)
        assert frame.schema == expected.schema, (fmt, how)
        assert frame.equals(expected), (fmt, how)  # bit-for-bit: no float rounded on the way


def test_assessment_series_carries_trades_volume_range_and_fallback(client):
    points = _json_points(client, "/v1/assessments/COTTON/series")
    source = _assessment_points()
    assert len(points) == len(source)
    for point, want in zip(points, source, strict=True):
        assert point["date"] == want["date"].isoformat()
        assert point["value"] == want["price"]
        for field in ("trades", "volume", "high", "low", "fallback"):
            assert point[field] == want[field], field
        assert point["status"] == "final"
    weekly = _json_points(client, "/v1/assessments/COTTON/series", frequency="weekly")
    reference = naive.collapse([{**p, "value": p["price"]} for p in source], "weekly")
    assert [(p["date"], p["trades"], p["volume"]) for p in weekly] == [
        (r["date"].isoformat(), r["trades"], pytest.approx(r["volume"], rel=1e-12))
        for r in reference
    ]
    assert [p["high"] for p in weekly] == [r["high"] for r in reference]


def test_csv_text_cells_cannot_run_as_spreadsheet_formulas(client):
    answer = client.get("/v1/assessments/COTTON/series", params={"format": "csv"})
    lines = answer.text.splitlines()
    assert lines[0] == "date,value,status,trades,volume,high,low,fallback,flags"
    row = lines[1 + 7]
    assert row.endswith(",'=HYPERLINK(evil),")  # the last cell: no flags
    assert not any(cell.startswith(("=", "+", "@")) for line in lines for cell in line.split(","))
    # A negative number is a number, not a formula: it stays as it is.
    change = client.get(
        "/v1/indices/BCPI/series", params={"format": "csv", "transform": "change"}
    ).text
    assert any(line.split(",")[1].startswith("-") for line in change.splitlines()[1:])


def test_as_of_answers_what_was_published_then(client, engine):
    later = T0 + dt.timedelta(days=3)
    day = DAYS[-1]
    counts = publish_index(engine, "BCPI", {day: VALUES[day] + 5.0}, now=later)
    assert counts.restated == 1
    url = "/v1/indices/BCPI/series"
    before = _json_points(client, url, start=day, as_of=(later - dt.timedelta(seconds=1)))
    at = _json_points(client, url, start=day, as_of=later.isoformat())
    now = _json_points(client, url, start=day)
    assert before == [
        {"date": day.isoformat(), "value": VALUES[day], "status": "final", "flags": []}
    ]
    restated = {"date": day.isoformat(), "value": VALUES[day] + 5.0, "status": "restated"}
    assert at == now == [{**restated, "flags": []}]
    # Before the first publication nothing was known.
    assert _json_points(client, url, as_of=(T0 - dt.timedelta(seconds=1)).isoformat()) == []
    # A naive timestamp is read as UTC.
    naive_before = (later - dt.timedelta(seconds=1)).replace(tzinfo=None).isoformat()
    assert _json_points(client, url, start=day, as_of=naive_before) == before


def test_intraday_lists_each_provisional_and_final_vintage_at_its_time(client, engine):
    day = dt.date(2025, 6, 2)
    times = [T0 + dt.timedelta(hours=h) for h in range(4)]
    for n, moment in enumerate(times[:3]):
        publish_index(engine, "BCPI", {day: 1000.0 + n}, now=moment, status="provisional")
    publish_index(engine, "BCPI", {day: 1002.5}, now=times[3], status="final")
    points = _json_points(
        client, "/v1/indices/BCPI/series", frequency="intraday", start=day, end=day
    )
    assert [(p["value"], p["status"]) for p in points] == [
        (1000.0, "provisional"),
        (1001.0, "provisional"),
        (1002.0, "provisional"),
        (1002.5, "final"),
    ]
    assert [dt.datetime.fromisoformat(p["time"]) for p in points] == times
    assert all(p["date"] == day.isoformat() for p in points)
    as_of = _json_points(
        client,
        "/v1/indices/BCPI/series",
        frequency="intraday",
        start=day,
        as_of=times[1].isoformat(),
    )
    assert [p["value"] for p in as_of] == [1000.0, 1001.0]
    latest = client.get("/v1/indices/BCPI/latest").json()
    assert (latest["date"], latest["value"], latest["status"]) == (day.isoformat(), 1002.5, "final")
    assert latest["vintage"] == 4


def test_log_return_sums_to_the_log_of_the_whole_move(client):
    points = _json_points(client, "/v1/indices/BCPI/series", transform="log_return")
    assert points[0]["value"] is None  # the first point has no previous value
    total = math.fsum(p["value"] for p in points[1:])
    assert total == pytest.approx(math.log(VALUES[DAYS[-1]] / VALUES[DAYS[0]]), rel=1e-9)


def test_a_withdrawn_date_leaves_every_series_and_the_latest_value(client, engine):
    """A date that is no longer a publication day gets a ``withdrawn`` vintage without a
    value: series, periods, transforms and the latest value pass over it; what was known
    before the withdrawal stays readable with ``as_of``, and the vintages list it."""
    withdrawn_at = T0 + dt.timedelta(days=1)
    # Monday 23 January 2023 (the Spring Festival) and the last day of the history.
    gone = [dt.date(2023, 1, 23), DAYS[-1]]
    assert set(gone) <= set(DAYS)
    with session_scope(engine) as session:
        count = withdraw_vintages(
            session,
            models.IndexValue,
            "index_id",
            gone,
            now=withdrawn_at,
            rules=Restating(in_force().version),
        )
    assert count == len(gone)
    kept = [{"date": d, "value": v, "status": "final"} for d, v in VALUES.items() if d not in gone]
    url = "/v1/indices/BCPI/series"
    points = _json_points(client, url)
    assert [(p["date"], p["value"], p["status"]) for p in points] == [
        (p["date"].isoformat(), p["value"], "final") for p in kept
    ]
    cases = [("daily", "pct_change"), ("weekly", "level"), ("monthly", "change")]
    for frequency, transform in cases:
        got = _json_points(client, url, frequency=frequency, transform=transform)
        _same_values(got, _expected(frequency, transform, kept), (frequency, transform))
    latest = client.get("/v1/indices/BCPI/latest").json()
    assert (latest["date"], latest["value"]) == (DAYS[-2].isoformat(), VALUES[DAYS[-2]])

    before = _json_points(client, url, start=gone[0], end=gone[0], as_of=T0.isoformat())
    assert before == [
        {"date": gone[0].isoformat(), "value": VALUES[gone[0]], "status": "final", "flags": []}
    ]
    listed = client.get("/v1/indices/BCPI/vintages", params={"date": gone[0].isoformat()})
    vintages = listed.json()["vintages"]
    assert [(v["vintage"], v["status"], v["value"]) for v in vintages] == [
        (1, "final", VALUES[gone[0]]),
        (2, "withdrawn", None),
    ]
