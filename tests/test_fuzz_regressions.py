"""Regressions found by the malformed-row fuzzing of ``POST /v1/trades``: each row here was
once a 5xx, a whole batch refused, or a bad trade stored."""

from __future__ import annotations

import datetime as dt
import io
import json
import math

import polars as pl
import pytest
from fastapi.testclient import TestClient

from store.bootstrap import prepare_database
from store.db import make_engine
from tests.support_api import app_for, issue_keys

TRADE = {
    "trade_id": "R1",
    "commodity": "REBAR",
    "traded_at": "2025-03-03T10:00:00+08:00",
    "price": "3300",
    "quantity": "50",
    "currency": "CNY",
    "unit": "t",
}
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


@pytest.fixture
def push(database_url, catalogue, tmp_path):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    key = issue_keys(engine).exchange
    with TestClient(app_for(database_url, tmp_path)) as client:

        def send(body: bytes, media: str):
            headers = {"X-API-Key": key, "Content-Type": media}
            return client.post("/v1/trades", content=body, headers=headers)

        yield send
    engine.dispose()


def typed(column: pl.Series, media: str = PARQUET) -> bytes:
    frame = pl.DataFrame({k: [v] * len(column) for k, v in TRADE.items() if k != column.name})
    frame = frame.with_columns(column)
    out = io.BytesIO()
    (frame.write_parquet if media == PARQUET else frame.write_ipc_stream)(out)
    return out.getvalue()


def _json(rows: list[dict]) -> bytes:
    return json.dumps(rows).encode()


def _ndjson(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _cases():
    """(what was wrong, body, media type, expected status, expected (field, code) per row)."""
    bad_type = [("traded_at", "bad_type")]
    for media in (PARQUET, ARROW):
        yield (
            "an unsigned epoch beyond int64 answered 500",
            typed(pl.Series("traded_at", [2**63 + 5], dtype=pl.UInt64), media),
            media,
            200,
            bad_type,
        )
    year_146_million = pl.Series("traded_at", [2**62], dtype=pl.Int64)
    yield (
        "a typed instant no calendar prints panicked inside Polars (500)",
        typed(year_146_million.cast(pl.Datetime("ms", "UTC"))),
        PARQUET,
        200,
        bad_type,
    )
    yield (
        "a price column of such instants panicked too",
        typed(year_146_million.alias("price").cast(pl.Datetime("ms"))),
        PARQUET,
        200,
        [("price", "bad_type")],
    )
    one_day = pl.Series("traded_at", [86_400_000], dtype=pl.Int64).cast(pl.Duration("ms"))
    yield ("a duration column answered 500", typed(one_day), PARQUET, 200, bad_type)
    yield (
        "an exchange column of durations answered 500",
        typed(one_day.alias("exchange")),
        PARQUET,
        422,
        None,
    )
    # (t + 2**64) / 1000 ms, scaled to µs in 64 bits, wrapped round to t = 2025-03-03.
    wrapped = str((1_740_996_000_000_384 + 2**64) // 1000)
    yield (
        "epoch milliseconds that overflow were stored as 2025-03-03",
        _json([{**TRADE, "traded_at": wrapped}]),
        "application/json",
        200,
        bad_type,
    )
    yield (
        "a float identifier column was stored (12345678901234567 read as ...568)",
        typed(pl.Series("trade_id", [12345678901234567.0])),
        PARQUET,
        200,
        [("trade_id", "bad_type")],
    )
    formulas = [
        ("trade_id", '=HYPERLINK("http://x")'),
        ("trade_id", "+1"),
        ("trade_id", "-1"),
        ("trade_id", "@SUM(A1)"),
        ("grade", "=1+1"),
    ]
    yield (
        "text a spreadsheet runs as a formula was stored",
        _json(
            [
                {**TRADE, "trade_id": f"F{i}", "commodity": "PTA", "price": "4700", name: value}
                for i, (name, value) in enumerate(formulas)
            ]
        ),
        "application/json",
        200,
        [(name, "bad_text") for name, _ in formulas],
    )
    # Stored, three of these made the next assessment's sums overflow and the whole
    # computation fail.
    yield (
        "a quantity of 1e308 was stored",
        _json([{**TRADE, "trade_id": f"Q{i}", "quantity": "1e308"} for i in range(3)]),
        "application/json",
        200,
        [("quantity", "quantity_out_of_band")] * 3,
    )
    far = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    yield (
        "instants at the calendar's ends are still understood",
        _json(
            [
                {**TRADE, "trade_id": "E1", "traded_at": str(int(far.timestamp() * 1000))},
                {**TRADE, "trade_id": "E2", "traded_at": "-62135596800000"},
            ]
        ),
        "application/json",
        200,
        [("traded_at", "future_timestamp"), ("traded_at", "before_listing")],
    )


def test_rows_that_once_broke_the_push_are_rejected_with_their_reason(push):
    wrong = []
    for what, body, media, status, expected in _cases():
        answer = push(body, media)
        got = answer.status_code
        if got == 200:
            result = answer.json()
            got = (200, result["accepted"], [(r["field"], r["code"]) for r in result["rejections"]])
            want = (200, 0, expected)
        else:
            want = status
        if got != want:
            wrong.append(f"{what}: expected {want}, got {got}: {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_ndjson_with_a_unicode_line_break_inside_a_string_is_read_by_lines(push):
    # A NaN token sends NDJSON to the Python reader, which split lines on U+2028 too and
    # refused the whole batch (422).
    rows = [{**TRADE, "trade_id": "N1", "grade": "a\u2028b", "price": math.nan}, TRADE]
    answer = push(_ndjson(rows), "application/x-ndjson")
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    assert [r["code"] for r in answer.json()["rejections"]] == ["not_finite"]


def test_an_empty_quoted_csv_field_is_an_absent_value(push):
    # Found by the differential test: "" for action or grade was refused
    # (unsupported_action, quality_out_of_range) where an empty unquoted field was not.
    body = (
        b"trade_id,commodity,traded_at,price,quantity,currency,unit,grade,action\n"
        b'C1,COTTON,2025-03-03T10:00:00+08:00,14500,20,CNY,t,"",""\n'
        b"C2,COTTON,2025-03-03T10:00:00+08:00,14500,20,CNY,t,,\n"
    )
    answer = push(body, "text/csv")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["rejections"]) == (2, [])
