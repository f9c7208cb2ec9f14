"""The demo pipeline end to end, then the API on top of what it stored."""

from __future__ import annotations

import datetime as dt
import io

import polars as pl
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cli.demo import run_pipeline
from cli.synthetic import EXCHANGES, trading_days
from core.calendar import Calendar
from core.methodology import in_force
from core.settings import Settings
from store.db import make_engine

DAYS = 30
START = dt.date(2025, 1, 2)
# The demo's exchanges trade on every weekday; its 30 run from 2 January to 12 February 2025,
# across the Spring Festival. The State Council's notice for 2025: the holiday runs from
# 28 January to 4 February (the weekend make-up days 26 January and 8 February are not
# publication days under the mainland rule, and are not weekdays the demo trades on).
SPRING_FESTIVAL = {dt.date(2025, 1, 28) + dt.timedelta(days=n) for n in range(8)}


def publication_days() -> list[dt.date]:
    """The demo's weekdays less the mainland holidays among them (by hand, above)."""
    return [d for d in trading_days(START, DAYS) if d not in SPRING_FESTIVAL]


@pytest.fixture
def demo(database_url, catalogue, tmp_path):
    engine = make_engine(database_url)
    run = run_pipeline(
        engine,
        catalogue,
        tmp_path / "feeds",
        days=DAYS,
        start=START,
        calendar=Calendar(in_force()),
    )
    engine.dispose()
    settings = Settings(database_url=database_url)
    with TestClient(create_app(settings)) as client:
        yield run, client


def test_pipeline_ingests_every_exchange_and_rejects_the_malformed_rows(demo, tmp_path):
    run, _ = demo
    assert sorted(p.stem for p in run.files) == sorted(EXCHANGES)
    for path in run.files:
        result = run.ingested[path.name]
        rows = pl.read_csv(path, infer_schema=False).height
        assert result.accepted + result.rejected == rows
        assert result.rejected == 8  # 7 broken copies and one repeated trade_id per file
        assert result.duplicates == 0


def test_indices_lists_composite_sectors_and_every_commodity(demo, catalogue):
    _, client = demo
    answer = client.get("/v1/indices")
    assert answer.status_code == 200
    indices = answer.json()
    kinds = {i["code"]: i["kind"] for i in indices}
    assert kinds[catalogue.composite.code] == "composite"
    assert {s.index_code for s in catalogue.sectors} == {
        c for c, k in kinds.items() if k == "sector"
    }
    assert {c.code for c in catalogue.commodities} == {
        c for c, k in kinds.items() if k == "commodity"
    }
    first = indices[0]
    assert first["kind"] == "composite"
    assert first["name_zh"] == "北京大宗商品价格指数"
    assert first["base_date"] == START.isoformat() and first["base_value"] == 1000.0


def test_every_series_covers_the_demo_days(demo):
    _, client = demo
    expected_days = [d.isoformat() for d in publication_days()]
    assert len(expected_days) == DAYS - 6  # six holiday weekdays have no value
    for index in client.get("/v1/indices").json():
        answer = client.get(f"/v1/indices/{index['code']}/series")
        assert answer.status_code == 200
        body = answer.json()
        assert body["code"] == index["code"]
        assert [p["date"] for p in body["points"]] == expected_days, index["code"]
        assert body["points"][0]["value"] == pytest.approx(1000.0, rel=1e-12)
        assert all(p["status"] == "final" for p in body["points"])


def test_series_range_is_inclusive(demo):
    _, client = demo
    days = publication_days()
    answer = client.get(
        "/v1/indices/BCPI/series", params={"start": days[3].isoformat(), "end": days[7].isoformat()}
    )
    assert [p["date"] for p in answer.json()["points"]] == [d.isoformat() for d in days[3:8]]


@pytest.mark.parametrize(
    ("url", "status", "error"),
    [
        ("/v1/indices/NOPE/series", 404, "UnknownIndex"),
        ("/v1/indices/BCPI/series?start=2025-02-01&end=2025-01-01", 422, "InvalidRange"),
        ("/v1/indices/BCPI/series?start=yesterday", 422, "InvalidRequest"),
    ],
)
def test_client_mistakes_get_clear_4xx(demo, url, status, error):
    _, client = demo
    answer = client.get(url)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert answer.json()["detail"]


def test_health_docs_and_dashboard(demo):
    _, client = demo
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    assert "/v1/indices/{code}/series" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "北京大宗商品价格指数" in page.text


def test_composite_explanation_and_every_format_agree_on_the_demo(demo):
    """On the full catalogue: explain recomputes the composite; the formats carry one series."""
    _, client = demo
    last = client.get("/v1/indices/BCPI/latest").json()
    explanation = client.get("/v1/indices/BCPI/explain", params={"date": last["date"]}).json()
    assert explanation["value"] == last["value"]
    total = 0.0
    for member in explanation["constituents"]:
        base_price = member["base"]["price"]
        level = member["assessment"]["price"] / base_price * explanation["base_value"]
        reference = member["reference"]["price"] / base_price * explanation["base_value"]
        assert level == pytest.approx(member["level"], rel=1e-12)
        assert reference == pytest.approx(member["reference_level"], rel=1e-12)
        total += member["weight"] * level / reference
    assert explanation["reference_value"] * total == pytest.approx(last["value"], rel=1e-12)

    points = client.get("/v1/indices/BCPI/series").json()["points"]
    expected = pl.DataFrame(
        {
            "date": [dt.date.fromisoformat(p["date"]) for p in points],
            "value": [p["value"] for p in points],
            "status": [p["status"] for p in points],
            "flags": [p["flags"] for p in points],
        },
        schema_overrides={"flags": pl.List(pl.String)},
    )
    csv = client.get("/v1/indices/BCPI/series", headers={"Accept": "text/csv"}).content
    schema = {"date": pl.Date, "value": pl.Float64, "status": pl.String, "flags": pl.String}
    words = pl.col("flags").fill_null("").str.split(" ")
    from_csv = pl.read_csv(io.BytesIO(csv), schema=schema).with_columns(
        words.list.eval(pl.element().filter(pl.element() != ""))
    )
    assert from_csv.equals(expected)
    parquet = client.get("/v1/indices/BCPI/series", params={"format": "parquet"}).content
    assert pl.read_parquet(io.BytesIO(parquet)).equals(expected)
    arrow = client.get("/v1/indices/BCPI/series", params={"format": "arrow"}).content
    assert pl.read_ipc_stream(io.BytesIO(arrow)).equals(expected)
