"""POST /v1/trades: every reason code over HTTP, every format, re-sends, idempotency keys,
body and row limits, atomic batches."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import Counter

import pytest
from sqlalchemy import func, select

from core.fields import Reason
from ingest.files import ingest_file
from store import models
from store.db import session_scope
from store.models import IdempotencyRecord
from tests.feeds_support import (
    FORMATS,
    MEDIA,
    client_for,
    encode,
    exchange_key,
    push,
    stored_counts,
    stored_trades,
    trade,
)

VALID = [
    trade("V1"),
    trade(
        "V2",
        commodity="IRONORE",
        price="101.5",
        quantity="35000",
        currency="USD",
        unit="dmt",
        fe_pct="62",
        moisture_pct="8",
    ),
    trade(
        "V3",
        commodity="COTTON",
        price="14500",
        quantity="20",
        grade="3128B",
        traded_at="1740967200000",
    ),
]
# (row, field, code): each broken in exactly one way.
BAD = [
    (trade("B01", quantity=None), "quantity", "missing_field"),
    (trade("B02", price="1.9x"), "price", "bad_type"),
    (trade("B03", seq="1.9"), "seq", "bad_type"),
    (trade("B04", traded_at="2025-03-03T10:00:00"), "traded_at", "bad_type"),
    (trade("B05", price="NaN"), "price", "not_finite"),
    (trade("B06", quantity="-inf"), "quantity", "not_finite"),
    (trade("B07", commodity="R" * 65), "commodity", "bad_text"),
    (trade("B08", price="-5"), "price", "non_positive_price"),
    (trade("B09", price="0"), "price", "non_positive_price"),
    (trade("B10", quantity="0"), "quantity", "non_positive_quantity"),
    (trade("B10b", quantity="1e308"), "quantity", "quantity_out_of_band"),
    (trade("B11", commodity="GOLD"), "commodity", "unknown_commodity"),
    (trade("B12", unit="m3"), "unit", "unit_mismatch"),
    (trade("B13", currency="EUR"), "currency", "currency_mismatch"),
    (trade("B14", price="99999"), "price", "price_out_of_band"),
    (
        trade(
            "B15",
            commodity="IRONORE",
            price="101",
            quantity="35000",
            currency="USD",
            unit="dmt",
            fe_pct="55",
        ),
        "fe_pct",
        "quality_out_of_range",
    ),
    (
        trade("B16", commodity="COTTON", price="14500", grade="9999Z"),
        "grade",
        "quality_out_of_range",
    ),
    (trade("B17", traded_at="2999-01-01T10:00:00+08:00"), "traded_at", "future_timestamp"),
    (trade("B18", traded_at="2019-06-01T10:00:00+08:00"), "traded_at", "before_listing"),
    (trade("B19", action="delete"), "action", "unsupported_action"),
    (trade("V1", price="3301"), "trade_id", "duplicate_in_batch"),
    ({"trade_id": "NOPE", "action": "cancel"}, "trade_id", "unknown_trade"),
    (trade("GONE", price="3310", action="amend"), "action", "trade_cancelled"),
]


@pytest.fixture
def api(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        client.engine = engine
        yield client


@pytest.fixture
def key(api) -> str:
    return exchange_key(api.engine, "BJCX")


def test_reason_codes_are_the_ones_tested():
    assert {code for _, _, code in BAD} == {r.value for r in Reason}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_bad_row_gets_its_code_and_the_valid_rows_are_stored(api, key, fmt):
    assert push(api, key, [trade("GONE")], fmt).status_code == 200
    cancelled = api.delete("/v1/trades/GONE", headers={"X-API-Key": key})
    assert cancelled.status_code == 200
    # A cancel answers as a push of its one row does.
    assert {
        k: cancelled.json()[k] for k in ("rows", "accepted", "cancelled", "rejected", "by_reason")
    } == {"rows": 1, "accepted": 1, "cancelled": 1, "rejected": 0, "by_reason": {}}
    assert cancelled.json()["batch_ids"] == [cancelled.json()["batch_id"]]
    before = stored_counts(api.engine)

    answer = push(api, key, VALID + [row for row, _, _ in BAD], fmt)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    got = {r["row"]: (r["trade_id"], r["field"], r["code"]) for r in body["rejections"]}
    expected = {
        len(VALID) + i + 1: (row["trade_id"], field, code)
        for i, (row, field, code) in enumerate(BAD)
    }
    assert got == expected
    assert all(r["message"] for r in body["rejections"])
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (len(VALID), 0, len(BAD))
    # The answer also counts the rows received, the rejections by reason, and names the
    # one batch the push stored.
    assert body["rows"] == len(VALID) + len(BAD)
    assert body["by_reason"] == dict(Counter(code for _, _, code in BAD))
    with session_scope(api.engine) as session:
        newest = session.scalar(select(func.max(models.IngestBatch.id)))
    assert body["batch_ids"] == [body["batch_id"]] == [newest]
    after = stored_counts(api.engine)
    assert after["trades"] == before["trades"] + len(VALID)
    assert set(stored_trades(api.engine)) == {"GONE", "V1", "V2", "V3"}
    assert stored_trades(api.engine)["V1"].price == 3300.0


def test_a_nul_byte_in_text_is_bad_text_on_every_database(api, key):
    rows = [trade("N1", commodity="REB\x00AR"), trade("N\x002"), trade("N3")]
    answer = push(api, key, rows, "json")
    assert answer.status_code == 200
    assert [(r["row"], r["code"]) for r in answer.json()["rejections"]] == [
        (1, "bad_text"),
        (2, "bad_text"),
    ]
    assert set(stored_trades(api.engine)) == {"N3"}


def test_json_nan_and_infinity_tokens_are_refused_per_row(api, key):
    body = (
        b'[{"trade_id":"J1","commodity":"REBAR","traded_at":"2025-03-03T10:00:00Z",'
        b'"price":NaN,"quantity":5,"currency":"CNY","unit":"t"},'
        b'{"trade_id":"J2","commodity":"REBAR","traded_at":"2025-03-03T10:00:00Z",'
        b'"price":3300,"quantity":Infinity,"currency":"CNY","unit":"t"},'
        b'{"trade_id":"J3","commodity":"REBAR","traded_at":"2025-03-03T10:00:00Z",'
        b'"price":1e999,"quantity":5,"currency":"CNY","unit":"t"},'
        b'{"trade_id":"J4","commodity":"REBAR","traded_at":"2025-03-03T10:00:00Z",'
        b'"price":3300.5,"quantity":5,"currency":"CNY","unit":"t"}]'
    )
    answer = api.post(
        "/v1/trades", content=body, headers={"X-API-Key": key, "Content-Type": MEDIA["json"]}
    )
    assert answer.status_code == 200
    assert [(r["trade_id"], r["field"], r["code"]) for r in answer.json()["rejections"]] == [
        ("J1", "price", "not_finite"),
        ("J2", "quantity", "not_finite"),
        ("J3", "price", "not_finite"),
    ]
    assert stored_trades(api.engine)["J4"].price_raw == 3300.5


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_numbers_are_never_truncated(api, key, fmt):
    rows = [{**trade("F1"), "quantity": 1.9, "price": 3300.25, "seq": 7}]
    content = json.dumps(rows) if fmt == "json" else json.dumps(rows[0]) + "\n"
    answer = api.post(
        "/v1/trades", content=content, headers={"X-API-Key": key, "Content-Type": MEDIA[fmt]}
    )
    assert answer.json()["accepted"] == 1
    stored = stored_trades(api.engine)["F1"]
    assert (stored.quantity_raw, stored.price_raw, stored.seq) == (1.9, 3300.25, 7)

    fractional_seq = [{**trade("F2"), "seq": 1.5}]
    content = json.dumps(fractional_seq)
    answer = api.post(
        "/v1/trades", content=content, headers={"X-API-Key": key, "Content-Type": MEDIA["json"]}
    )
    assert answer.json()["rejections"][0]["code"] == "bad_type"


def test_typed_parquet_and_arrow_columns_are_checked_too(api, key):
    import io

    import polars as pl

    df = pl.DataFrame(
        {
            "trade_id": ["P1", "P2", "P3"],
            "commodity": ["REBAR"] * 3,
            "traded_at": [dt.datetime(2025, 3, 3, 2, tzinfo=dt.UTC)] * 3,
            "price": [3300.5, float("nan"), 3300.0],
            "quantity": [10, 10, 10],
            "currency": ["CNY"] * 3,
            "unit": ["t"] * 3,
            "seq": [1.0, 2.0, 3.0],
        }
    ).with_columns(pl.col("traded_at").dt.replace_time_zone(None).alias("naive"))
    aware = df.drop("naive")
    out = io.BytesIO()
    aware.write_ipc_stream(out)
    answer = api.post(
        "/v1/trades",
        content=out.getvalue(),
        headers={"X-API-Key": key, "Content-Type": MEDIA["arrow"]},
    )
    # seq typed as float is not an integer column: every row is refused on it first.
    assert [r["code"] for r in answer.json()["rejections"]] == ["bad_type"] * 3

    naive = df.drop("traded_at", "seq").rename({"naive": "traded_at"})
    out = io.BytesIO()
    naive.write_parquet(out)
    answer = api.post(
        "/v1/trades",
        content=out.getvalue(),
        headers={"X-API-Key": key, "Content-Type": MEDIA["parquet"]},
    )
    assert [(r["field"], r["code"]) for r in answer.json()["rejections"]] == [
        ("traded_at", "bad_type")
    ] * 3

    typed = aware.drop("seq")
    out = io.BytesIO()
    typed.write_parquet(out)
    answer = api.post(
        "/v1/trades",
        content=out.getvalue(),
        headers={"X-API-Key": key, "Content-Type": MEDIA["parquet"]},
    ).json()
    assert [(r["trade_id"], r["code"]) for r in answer["rejections"]] == [("P2", "not_finite")]
    assert answer["accepted"] == 2
    assert stored_trades(api.engine)["P1"].traded_at == dt.datetime(2025, 3, 3, 2, tzinfo=dt.UTC)


def test_resending_a_batch_by_any_path_changes_no_stored_count(api, key, catalogue, tmp_path):
    rows = [
        trade("R1"),
        trade("R2", price="3310"),
        trade("R1", action="amend", price="3305"),
        trade("R2", action="cancel"),
        trade("R9", price="-1"),
    ]
    first = push(api, key, rows, "csv").json()
    assert (first["accepted"], first["rejected"]) == (4, 1)
    after_first = stored_counts(api.engine)
    assert (after_first["trades"], after_first["revisions"]) == (2, 2)

    for fmt in FORMATS:
        again = push(api, key, rows, fmt).json()
        assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 4, 1), fmt
        gzipped = api.post(
            "/v1/trades",
            content=gzip.compress(encode(rows, fmt)),
            headers={"X-API-Key": key, "Content-Type": MEDIA[fmt], "Content-Encoding": "gzip"},
        ).json()
        assert (gzipped["accepted"], gzipped["duplicates"]) == (0, 4), fmt
        assert stored_counts(api.engine) == after_first, fmt
    for fmt in ("csv", "parquet"):
        path = tmp_path / f"resent.{fmt}"
        path.write_bytes(encode(rows, fmt))
        result = ingest_file(api.engine, catalogue, path, "BJCX", archive_dir=tmp_path / "a")
        assert (result.accepted, result.duplicates, result.rejected) == (0, 4, 1), fmt
    assert stored_counts(api.engine) == after_first


def test_idempotency_key_replays_the_answer_and_refuses_another_payload(api, key):
    rows = [trade("I1"), trade("I2", price="-3")]
    headers = {"Idempotency-Key": "batch-0001"}
    first = push(api, key, rows, headers=headers)
    assert first.status_code == 200 and first.json()["accepted"] == 1
    counts = stored_counts(api.engine)

    replay = push(api, key, rows, headers=headers)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()  # the first answer, not "1 duplicate"
    assert stored_counts(api.engine) == counts

    other = push(api, key, [trade("I3")], headers=headers)
    assert other.status_code == 409
    assert other.json()["error"] == "IdempotencyConflict"
    assert "I3" not in stored_trades(api.engine)

    # Keys are per exchange: another exchange may use the same key for its own batch.
    other_key = exchange_key(api.engine, "CBEEX")
    theirs = push(api, other_key, [trade("I1")], headers=headers)
    assert theirs.status_code == 200 and theirs.json()["accepted"] == 1

    bad = push(api, key, rows, headers={"Idempotency-Key": "bad key with spaces"})
    assert bad.status_code == 422


def test_an_expired_idempotency_key_is_a_new_request(api, key):
    headers = {"Idempotency-Key": "old"}
    push(api, key, [trade("E1")], headers=headers)
    with session_scope(api.engine) as session:
        record = session.query(IdempotencyRecord).one()
        assert record.expires_at - record.created_at == dt.timedelta(hours=48)
        record.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    answer = push(api, key, [trade("E2")], headers=headers)
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    assert "Idempotent-Replayed" not in answer.headers


def test_atomic_batch_with_an_invalid_row_stores_nothing(api, key):
    rows = [trade("A1"), trade("A2", price="oops")]
    answer = push(api, key, rows, params={"atomic": "true"})
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "BatchRejected"
    assert [(r["row"], r["code"]) for r in body["detail"]["rejections"]] == [(2, "bad_type")]
    assert stored_counts(api.engine)["trades"] == 0

    unknown = push(
        api, key, [trade("A3"), {"trade_id": "ZZ", "action": "cancel"}], params={"atomic": "true"}
    )
    assert unknown.status_code == 422
    assert stored_counts(api.engine)["trades"] == 0

    ok = push(api, key, [trade("A1")], params={"atomic": "true"})
    assert ok.status_code == 200 and ok.json()["accepted"] == 1


def test_oversize_bodies_get_413_before_being_read_whole(database_url, engine, tmp_path):
    limit = 64 * 1024
    with client_for(database_url, tmp_path / "a", max_body_bytes=limit, rows_per_batch=50) as api:
        key = exchange_key(engine, "BJCX")
        headers = {"X-API-Key": key, "Content-Type": "text/csv"}

        declared = api.post("/v1/trades", content=b"x" * (limit + 1), headers=headers)
        assert declared.status_code == 413

        def stream():
            yield encode([trade("S0")], "csv")
            for _ in range(100):
                yield b"S,REBAR,2025-03-03T10:00:00+08:00,3300,10,CNY,t\n" * 100

        streamed = api.post("/v1/trades", content=stream(), headers=headers)
        assert streamed.status_code == 413

        bomb = gzip.compress(encode([trade("G0")], "csv") + b"\n" * (10 * limit))
        assert len(bomb) < limit
        inflated = api.post(
            "/v1/trades", content=bomb, headers={**headers, "Content-Encoding": "gzip"}
        )
        assert inflated.status_code == 413
        assert "decompressed" in inflated.json()["detail"]

        many = api.post(
            "/v1/trades",
            content=encode([trade(f"M{i}") for i in range(51)], "csv"),
            headers=headers,
        )
        assert many.status_code == 413 and "rows" in many.json()["detail"]
        assert stored_counts(engine)["trades"] == 0

        fifty = api.post(
            "/v1/trades",
            content=encode([trade(f"M{i}") for i in range(50)], "csv"),
            headers=headers,
        )
        assert fifty.status_code == 200 and fifty.json()["accepted"] == 50


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b"trade_id\nX\n", 415),
        ("application/json", b'{"trade_id": "X"}', 422),
        ("application/json", b"[1, 2]", 422),
        ("application/json", b"[{", 422),
        ("application/x-ndjson", b"{}\n[]\n", 422),
        ("application/vnd.apache.parquet", b"PAR1 not really", 422),
        ("application/vnd.apache.arrow.stream", b"\xff\xff\xff\xff garbage", 422),
        ("text/csv", b"\xff\xfe\x00bad", 422),
    ],
)
def test_unreadable_bodies_are_client_errors(api, key, content_type, body, status):
    answer = api.post(
        "/v1/trades", content=body, headers={"X-API-Key": key, "Content-Type": content_type}
    )
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error", "detail"}
    assert stored_counts(api.engine)["trades"] == 0


def test_bad_gzip_and_unknown_encodings_are_refused(api, key):
    headers = {"X-API-Key": key, "Content-Type": "text/csv"}
    corrupt = api.post(
        "/v1/trades", content=b"not gzip", headers={**headers, "Content-Encoding": "gzip"}
    )
    assert corrupt.status_code == 422
    brotli = api.post("/v1/trades", content=b"x", headers={**headers, "Content-Encoding": "br"})
    assert brotli.status_code == 415


def test_each_accepted_batch_is_archived_with_its_sha256(api, key, tmp_path):
    import hashlib

    body = encode([trade("H1"), trade("H2")], "ndjson")
    api.post(
        "/v1/trades",
        content=gzip.compress(body),
        headers={"X-API-Key": key, "Content-Type": MEDIA["ndjson"], "Content-Encoding": "gzip"},
    )
    with session_scope(api.engine) as session:
        batch = session.scalars(select(models.IngestBatch)).one()
        assert (batch.source, batch.format) == ("http", "ndjson")
        assert batch.sha256 == hashlib.sha256(body).hexdigest()
        archived = tmp_path / "archive" / batch.archive_path
    assert archived.read_bytes() == body
