"""Participant codes, affiliation and receipt instants of trades (README "Exchange feeds").

A trade may carry its exchange's pseudonymous ``buyer`` and ``seller`` codes (text of 1 to
64 characters) and ``affiliated`` (a boolean), in every push and file format; every trade
stored keeps the instant its batch was received. The codes are confidential: the trade's
own exchange sees them on ``GET /v1/trades/{trade_id}``, and no other response shows them,
to anyone.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import polars as pl
import pytest

from core.methodology import in_force
from ingest.files import ingest_file
from publication.fixing import compute
from store import models
from store.db import session_scope
from store.reference import ensure_exchange
from tests.feeds_support import (
    FORMATS,
    MEDIA,
    client_for,
    exchange_key,
    push,
    role_key,
    stored_trades,
    trade,
)

BUYER, SELLER = "PTCP-B-7Q", "PTCP-S-3Z"


def _body(rows: list[dict], fmt: str) -> bytes:
    """``rows`` in ``fmt``, with ``affiliated`` a real boolean where the format has one
    (JSON ``true``, a Boolean column) and the text ``true``/``false`` in CSV."""
    if fmt in ("json", "ndjson"):
        lines = [json.dumps(r) for r in rows]
        return ("[" + ",".join(lines) + "]" if fmt == "json" else "\n".join(lines)).encode()
    schema = {name: pl.Boolean if name == "affiliated" else pl.String for name in rows[0]}
    frame = pl.DataFrame(rows, schema=schema)
    out = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(out)
    elif fmt == "parquet":
        frame.write_parquet(out)
    else:
        frame.write_ipc_stream(out)
    return out.getvalue()


@pytest.fixture
def api(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        client.engine = engine
        client.key = exchange_key(engine, "BJCX")
        yield client


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_stores_the_participants_and_the_receipt_instant(api, fmt):
    rows = [
        trade("T1") | {"buyer": BUYER, "seller": SELLER, "affiliated": True},
        trade("T2") | {"buyer": None, "seller": None, "affiliated": False},
        trade("T3") | {"buyer": "B-9", "seller": None, "affiliated": None},
    ]
    before = dt.datetime.now(dt.UTC)
    answer = api.post(
        "/v1/trades",
        content=_body(rows, fmt),
        headers={"Content-Type": MEDIA[fmt], "X-API-Key": api.key},
    )
    after = dt.datetime.now(dt.UTC)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 3
    stored = stored_trades(api.engine, "BJCX")
    assert [
        (t.buyer, t.seller, t.affiliated) for t in (stored["T1"], stored["T2"], stored["T3"])
    ] == [
        (BUYER, SELLER, True),
        (None, None, False),
        ("B-9", None, None),
    ]
    with session_scope(api.engine) as session:
        batch = session.get(models.IngestBatch, answer.json()["batch_id"])
        received = batch.received_at
    assert before <= received <= after
    assert {t.received_at for t in stored.values()} == {received}


@pytest.mark.parametrize(
    "text, expected", [("TRUE", True), ("False", False), ("1", True), ("0", False)]
)
def test_affiliated_is_read_as_a_boolean_from_text(api, text, expected):
    answer = push(api, api.key, [trade("T1", affiliated=text)])
    assert answer.json()["accepted"] == 1, answer.text
    assert stored_trades(api.engine)["T1"].affiliated is expected


def test_a_re_sent_trade_keeps_what_it_was_first_received_with(api):
    push(api, api.key, [trade("T1", buyer=BUYER)])
    first = stored_trades(api.engine)["T1"]
    answer = push(api, api.key, [trade("T1", buyer="SOMEONE-ELSE")])
    assert answer.json()["duplicates"] == 1
    again = stored_trades(api.engine)["T1"]
    assert (again.buyer, again.received_at) == (BUYER, first.received_at)


BAD = [
    ({"buyer": " B1"}, "buyer", "bad_text"),  # surrounding space: another code than "B1"
    ({"seller": "S1 "}, "seller", "bad_text"),
    ({"buyer": "B" * 65}, "buyer", "bad_text"),
    ({"seller": "=HYPERLINK(1)"}, "seller", "bad_text"),
    ({"buyer": "B\x071"}, "buyer", "bad_text"),
    ({"seller": "S\x00"}, "seller", "bad_text"),
    ({"affiliated": "yes"}, "affiliated", "bad_type"),
    ({"affiliated": "2"}, "affiliated", "bad_type"),
    ({"affiliated": " true"}, "affiliated", "bad_type"),
]


def test_bad_codes_and_flags_are_refused_with_the_field_the_reason_and_what_is_allowed(api):
    rows = [trade(f"T{n}", **fields) for n, (fields, _, _) in enumerate(BAD)]
    rows.append(trade("OK", buyer="B" * 64, seller="S-1", affiliated="false"))
    answer = push(api, api.key, rows, "ndjson")
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 1 and body["rejected"] == len(BAD)
    got = [(r["row"], r["field"], r["code"]) for r in body["rejections"]]
    assert got == [(n + 1, field, code) for n, (_, field, code) in enumerate(BAD)]
    messages = {r["field"]: r["message"] for r in body["rejections"]}
    assert "1 to 64 characters" in messages["buyer"] and "control characters" in messages["buyer"]
    assert "true or false" in messages["affiliated"]
    for rejection in body["rejections"]:  # the answer never repeats a code it refused
        assert " B1" not in json.dumps(rejection)


def test_a_typed_column_of_the_wrong_kind_is_refused(api):
    frame = pl.DataFrame([trade("T1")]).with_columns(affiliated=pl.lit(1.0))
    out = io.BytesIO()
    frame.write_parquet(out)
    answer = api.post(
        "/v1/trades",
        content=out.getvalue(),
        headers={"Content-Type": MEDIA["parquet"], "X-API-Key": api.key},
    )
    [rejection] = answer.json()["rejections"]
    assert (rejection["field"], rejection["code"]) == ("affiliated", "bad_type")
    assert "true or false" in rejection["message"]


def test_an_atomic_batch_with_one_bad_code_stores_nothing(api):
    rows = [trade("T1", buyer=BUYER), trade("T2", seller="\tS")]
    answer = push(api, api.key, rows, params={"atomic": "true"})
    assert answer.status_code == 422
    assert answer.json()["detail"]["rejections"][0]["field"] == "seller"
    assert stored_trades(api.engine) == {}


def test_an_amend_changes_the_participants_and_keeps_the_old_ones_in_the_history(api):
    push(api, api.key, [trade("T1", buyer=BUYER, seller=SELLER, affiliated="false")])
    received = stored_trades(api.engine)["T1"].received_at
    headers = {"X-API-Key": api.key}
    corrected = trade("T1", buyer="B-2", seller=SELLER) | {"affiliated": True}
    assert api.put("/v1/trades/T1", json=corrected, headers=headers).json()["amended"] == 1
    assert api.put("/v1/trades/T1", json=corrected, headers=headers).json()["duplicates"] == 1
    shown = api.get("/v1/trades/T1", headers=headers).json()
    assert (shown["buyer"], shown["seller"], shown["affiliated"]) == ("B-2", SELLER, True)
    assert dt.datetime.fromisoformat(shown["received_at"]) == received
    [revision] = shown["revisions"]
    previous = revision["previous"]
    assert (previous["buyer"], previous["seller"], previous["affiliated"]) == (BUYER, SELLER, False)

    # An amend is the whole corrected trade: without codes, the trade has none.
    bare = trade("T1", buyer=None)
    assert api.put("/v1/trades/T1", json=bare, headers=headers).json()["amended"] == 1
    stored = stored_trades(api.engine)["T1"]
    assert (stored.buyer, stored.seller, stored.affiliated) == (None, None, None)
    bad = api.put("/v1/trades/T1", json=trade("T1", buyer="=1"), headers=headers)
    assert bad.status_code == 422
    assert bad.json()["detail"]["rejections"][0]["field"] == "buyer"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_stores_the_participants_and_the_instant_it_was_ingested(
    engine, catalogue, tmp_path, suffix
):
    with session_scope(engine) as session:
        ensure_exchange(session, "BJCX")
    frame = pl.DataFrame(
        [trade("F1", buyer=BUYER, seller=SELLER, affiliated="true"), trade("F2")],
        schema=dict.fromkeys([*trade("x"), "buyer", "seller", "affiliated"], pl.String),
    )
    path = tmp_path / f"feed{suffix}"
    frame.write_csv(path) if suffix == ".csv" else frame.write_parquet(path)
    ingested = dt.datetime(2025, 3, 3, 7, 30, tzinfo=dt.UTC)
    with session_scope(engine) as session:
        result = ingest_file(session, catalogue, path, "BJCX", now=ingested)
    assert result.accepted == 2
    stored = stored_trades(engine)
    assert (stored["F1"].buyer, stored["F1"].seller, stored["F1"].affiliated) == (
        BUYER,
        SELLER,
        True,
    )
    assert stored["F2"].buyer is None
    assert {t.received_at for t in stored.values()} == {ingested}


# -- confidentiality -----------------------------------------------------------------------

DAYS = (dt.date(2026, 12, 2), dt.date(2026, 12, 3))  # methodology 2026.1: arm's length
EXCHANGES = ("BJCX", "CBEEX", "BSTX")


def _code(exchange: str, side: str, n: int) -> str:
    return f"ZQX{side}{exchange}{n:02d}"


@pytest.fixture
def published(engine, database_url, tmp_path):
    """Three exchanges' rebar trades on two days, every one with its own codes (one marked
    affiliated), assessed and published."""
    codes = []
    with client_for(database_url, tmp_path / "archive") as client:
        keys = {code: exchange_key(engine, code) for code in EXCHANGES}
        for e, exchange in enumerate(EXCHANGES):
            rows = []
            for d, day in enumerate(DAYS):
                for k in range(2):
                    n = 10 * d + k
                    buyer, seller = _code(exchange, "B", n), _code(exchange, "S", n)
                    codes += [buyer, seller]
                    rows.append(
                        trade(
                            f"{exchange}-{n}",
                            traded_at=f"{day}T1{k}:{e}0:00+08:00",
                            price=str(3300 + 10 * k + e),
                            quantity="200",
                            buyer=buyer,
                            seller=seller,
                            affiliated="true" if (e, k) == (0, 1) else "false",
                        )
                    )
            assert push(client, keys[exchange], rows).json()["accepted"] == len(rows)
    with session_scope(engine) as session:
        compute(session, DAYS[0], DAYS[1], now=dt.datetime(2026, 12, 3, 9, tzinfo=dt.UTC))
    keys |= {role: role_key(engine, role) for role in ("read", "auditor", "admin", "metrics")}
    return keys, codes


def _text(content: bytes, fmt: str | None) -> bytes:
    """A body as text: Parquet and Arrow (whose strings may be compressed) as NDJSON."""
    if fmt not in ("parquet", "arrow") or not content:
        return content
    read = pl.read_parquet if fmt == "parquet" else pl.read_ipc_stream
    return read(io.BytesIO(content)).write_ndjson().encode()


def _walk(client, key: str | None) -> dict[str, tuple[int, bytes]]:
    """Every GET of the API (and the dashboard page), with values for its parameters, each
    series in every format, as ``key`` sees it."""
    values = {
        "code": "REBAR",
        "commodity": "REBAR",
        "version": in_force().version,
        "formula": "fisher",
        "date": DAYS[1].isoformat(),
        "commodities": "REBAR,HRC",
        "updated_after": "2000-01-01T00:00:00Z",
        "year": "2026",
        "context": "dataflow",
        "agency_id": "BCPI",
        "resource_id": "INDICES",
        "key": "D.REBAR",
        "flow_ref": "INDICES",
        "resource": "dataflow",
        "structure_type": "dataflow",
        "batch_id": "1",
    }
    headers = {"X-API-Key": key} if key else {}
    seen = {}
    for path, operations in client.app.openapi()["paths"].items():
        if "get" not in operations or path in ("/v1/stream", "/v1/trades/{trade_id}"):
            continue  # the stream sends index values only and never ends; trades: below
        parameters = operations["get"].get("parameters", [])
        url = path.format(**{p["name"]: values[p["name"]] for p in parameters if p["in"] == "path"})
        query = {
            p["name"]: values[p["name"]]
            for p in parameters
            if p["in"] == "query" and p["name"] in values
        }
        if path == "/v1/feeds/health":
            del query["date"]  # today's: the day the trades were pushed
        formats = (
            [None, "csv", "parquet", "arrow"]
            if any(p["name"] == "format" for p in parameters)
            else [None]
        )
        for fmt in formats:
            answer = client.get(
                url, params=query | ({"format": fmt} if fmt else {}), headers=headers
            )
            content = _text(answer.content, fmt) if answer.status_code == 200 else answer.content
            seen[f"{url} {fmt or ''}"] = (answer.status_code, content)
    answer = client.get("/", headers=headers)
    seen["/"] = (answer.status_code, answer.content)
    return seen


def test_no_response_but_the_exchanges_own_trade_shows_a_participant_code(
    published, database_url, tmp_path
):
    keys, codes = published
    with client_for(database_url, tmp_path / "archive") as client:
        for holder in (None, "read", "auditor", "admin", "metrics", *EXCHANGES):
            seen = _walk(client, keys.get(holder))
            failed = {what: status for what, (status, _) in seen.items() if status >= 500}
            assert failed in ({}, {"/readyz ": 503}), (holder, failed)  # 503: fixing overdue
            for what, (_, content) in seen.items():
                leaked = [c for c in codes if c.encode() in content]
                assert not leaked, f"{what} shows {leaked[:3]} to {holder or 'the public'}"
            if holder in (None, "read", "auditor"):  # the walk reached the values
                for route in (
                    "/v1/indices/REBAR/explain ",
                    "/v1/indices/REBAR/series parquet",
                    "/v1/assessments/REBAR/series csv",
                ):
                    assert seen[route][0] == 200, (holder, route)

        own = client.get("/v1/trades/BJCX-1", headers={"X-API-Key": keys["BJCX"]}).json()
        assert (own["buyer"], own["seller"]) == (_code("BJCX", "B", 1), _code("BJCX", "S", 1))
        for other in ("CBEEX", "BSTX"):
            answer = client.get("/v1/trades/BJCX-1", headers={"X-API-Key": keys[other]})
            assert answer.status_code == 404
            assert not any(c.encode() in answer.content for c in codes)
        for holder in (None, "read", "auditor", "admin"):
            answer = client.get("/v1/trades/BJCX-1", headers={"X-API-Key": keys.get(holder) or ""})
            assert answer.status_code in (401, 403)
            assert not any(c.encode() in answer.content for c in codes)


def test_the_affiliated_trade_is_explained_by_its_rule_without_its_codes(
    published, database_url, tmp_path
):
    keys, codes = published
    with client_for(database_url, tmp_path / "archive") as client:
        answer = client.get(
            "/v1/indices/REBAR/explain",
            params={"date": DAYS[0].isoformat()},
            headers={"X-API-Key": keys["BJCX"]},
        )
    assert answer.status_code == 200
    (constituent,) = answer.json()["constituents"]
    assessment = constituent["assessment"]
    assert [(t["trade_id"], t["rule"]) for t in assessment["excluded"]] == [
        ("BJCX-1", "affiliated")
    ]
    assert not any(c in answer.text for c in codes)
