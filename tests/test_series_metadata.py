"""Series answers carry what describes them: the JSON envelope, the Parquet and Arrow
schema metadata, and, for CSV, the metadata URL the answer links to."""

from __future__ import annotations

import datetime as dt
import io
import re
import tomllib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.publication_data import T0, level, publish_assessments, publish_index, weekdays

DAYS = weekdays(dt.date(2025, 1, 2), 40)
CATALOGUE = tomllib.loads(Settings().catalogue_path.read_text(encoding="utf-8"))
COMPOSITE = CATALOGUE["composite"]
COTTON = next(c for c in CATALOGUE["commodities"] if c["code"] == "COTTON")


@pytest.fixture
def client(engine, database_url):
    publish_index(engine, "BCPI", {d: level(d) for d in DAYS[:20]}, now=T0, version="2025.1")
    publish_index(engine, "BCPI", {d: level(d) for d in DAYS[20:]}, now=T0, version="2025.2")
    points = [
        {
            "date": d,
            "price": level(d) * 3,
            "trades": 3,
            "volume": 10.0,
            "high": level(d) * 3.1,
            "low": level(d) * 2.9,
            "fallback": "none",
        }
        for d in DAYS
    ]
    publish_assessments(engine, "COTTON", points, now=T0)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client


def _index_fields(client):
    detail = client.get("/v1/indices/BCPI").json()
    return {
        "code": "BCPI",
        "name_en": COMPOSITE["name_en"],
        "name_zh": COMPOSITE["name_zh"],
        "unit": "points",
        "currency": None,
        "base_date": detail["base_date"],
        "base_value": detail["base_value"],
    }


def test_json_series_carries_names_unit_base_and_methodology_version(client):
    body = client.get("/v1/indices/BCPI/series").json()
    assert {k: body[k] for k in _index_fields(client)} == _index_fields(client)
    assert body["name_zh"] == "北京大宗商品价格指数"
    assert body["methodology_version"] == "2025.2"  # the newest value's
    early = client.get("/v1/indices/BCPI/series", params={"end": DAYS[19].isoformat()}).json()
    assert early["methodology_version"] == "2025.1"
    before = client.get("/v1/indices/BCPI/series", params={"as_of": "2020-01-01T00:00:00Z"})
    assert before.json()["methodology_version"] is None and before.json()["points"] == []


def test_commodity_series_carries_unit_and_currency_without_a_base(client):
    body = client.get("/v1/assessments/COTTON/series").json()
    assert (body["code"], body["name_en"], body["name_zh"]) == (
        "COTTON",
        COTTON["name_en"],
        COTTON["name_zh"],
    )
    assert (body["unit"], body["currency"]) == (COTTON["unit"], COTTON["currency"])
    assert body["base_date"] is None and body["base_value"] is None
    assert body["methodology_version"]
    assert len(body["points"]) == len(DAYS)


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_parquet_and_arrow_carry_the_same_fields_as_schema_metadata(client, fmt):
    json_body = client.get("/v1/indices/BCPI/series", params={"transform": "yoy"}).json()
    answer = client.get("/v1/indices/BCPI/series", params={"format": fmt, "transform": "yoy"})
    assert answer.status_code == 200
    if fmt == "parquet":
        schema = pq.read_schema(io.BytesIO(answer.content))
    else:
        schema = pa.ipc.open_stream(answer.content).schema
    metadata = {k.decode(): v.decode() for k, v in schema.metadata.items()}
    assert metadata["bcpi:code"] == "BCPI"
    assert metadata["bcpi:name_zh"] == COMPOSITE["name_zh"]
    assert metadata["bcpi:unit"] == "points"
    assert metadata["bcpi:base_date"] == json_body["base_date"]
    assert float(metadata["bcpi:base_value"]) == json_body["base_value"]
    assert metadata["bcpi:methodology_version"] == "2025.2"
    assert metadata["bcpi:transform"] == "yoy"
    assert "bcpi:currency" not in metadata  # an index in points has none


def test_commodity_parquet_names_its_currency(client):
    answer = client.get("/v1/assessments/COTTON/series", params={"format": "parquet"})
    metadata = pq.read_schema(io.BytesIO(answer.content)).metadata
    assert metadata[b"bcpi:currency"].decode() == COTTON["currency"]
    assert metadata[b"bcpi:unit"].decode() == COTTON["unit"]


@pytest.mark.parametrize(
    ("url", "code"), [("/v1/indices/BCPI", "BCPI"), ("/v1/assessments/COTTON", "COTTON")]
)
def test_csv_stays_plain_and_links_to_its_metadata(client, url, code):
    params = {"format": "csv", "end": DAYS[19].isoformat(), "transform": "change"}
    answer = client.get(f"{url}/series", params=params)
    assert answer.status_code == 200
    lines = answer.text.splitlines()
    assert lines[0].startswith("date,value,status")  # one header row, then the points
    assert len(lines) == 1 + 20
    link = re.fullmatch(r'<([^>]+)>; rel="describedby"', answer.headers["link"])
    assert link is not None, answer.headers["link"]
    target = link.group(1)
    assert target.startswith(f"{url}/metadata?") and "format" not in target
    described = client.get(target)
    assert described.status_code == 200
    body = described.json()
    json_answer = client.get(f"{url}/series", params={**params, "format": "json"}).json()
    assert body == {k: v for k, v in json_answer.items() if k != "points"}
    assert body["code"] == code and body["transform"] == "change"
    if code == "BCPI":
        assert body["methodology_version"] == "2025.1"


def test_metadata_of_an_unknown_series_is_404_naming_it(client):
    for url in ("/v1/indices/NOPE/metadata", "/v1/assessments/NOPE/metadata"):
        answer = client.get(url)
        assert answer.status_code == 404 and "NOPE" in answer.text
    assert client.get("/v1/assessments/NOPE/series").status_code == 404
