"""Column names of pushed bodies and feed files: any case, the documented aliases (FIX trade
capture names among them), a detected CSV delimiter, and a 422 naming the missing and the
unexpected columns when a required one is absent."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from ingest.files import ingest_file
from tests.feeds_support import (
    MEDIA,
    client_for,
    encode,
    exchange_key,
    stored_counts,
    stored_trades,
    trade,
)

FIX_NAMES = {
    "trade_id": "TradeID",
    "commodity": "Symbol",
    "traded_at": "TransactTime",
    "price": "LastPx",
    "quantity": "LastQty",
    "currency": "Currency",
    "unit": "UnitOfMeasure",
}


@pytest.fixture
def api(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        client.engine = engine
        client.key = exchange_key(engine, "BJCX")
        yield client


def _post(api, body: bytes, fmt: str, **params):
    headers = {"X-API-Key": api.key, "Content-Type": MEDIA[fmt]}
    return api.post("/v1/trades", content=body, headers=headers, params=params)


def _renamed(rows: list[dict], names: dict[str, str], fmt: str) -> bytes:
    frame = pl.DataFrame(rows).rename(names)
    out = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(out)
    elif fmt == "parquet":
        frame.write_parquet(out)
    else:
        frame.write_ipc_stream(out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_fix_names_are_read_as_the_fields_they_stand_for(api, fmt):
    body = _renamed([trade("F1", price="3305"), trade("F2")], FIX_NAMES, fmt)
    answer = _post(api, body, fmt, atomic="true")
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2
    assert stored_trades(api.engine)["F1"].price == 3305


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_column_names_are_matched_in_any_case(api, fmt):
    names = {name: name.upper() for name in trade("X")}
    names["trade_id"] = "Trade_Id"
    answer = _post(api, _renamed([trade("C1")], names, fmt), fmt)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_a_body_without_a_required_column_is_422_naming_it(api, fmt):
    rows = [{"id": "U1", "symbol": "REBAR", "px": "3300"}]
    answer = _post(api, _renamed(rows, {}, fmt), fmt, atomic="true")
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    for missing in ("trade_id", "traded_at", "price", "quantity", "currency", "unit"):
        assert missing in detail
    assert "'id'" in detail and "'px'" in detail
    assert "commodity" not in detail.split("unexpected")[0]  # Symbol named it
    assert stored_counts(api.engine)["trades"] == 0


def test_one_missing_column_is_named_even_without_atomic(api):
    body = encode([trade("M1")], "csv").replace(b"quantity", b"qty")
    answer = _post(api, body, "csv")
    assert answer.status_code == 422
    assert "quantity" in answer.json()["detail"] and "'qty'" in answer.json()["detail"]
    assert stored_counts(api.engine)["trades"] == 0


def test_two_columns_naming_one_field_are_refused(api):
    body = encode([trade("D1")], "csv").replace(b"trade_id", b"TradeID,ExecID", 1)
    body = body.replace(b"D1,", b"D1,D1,", 1)
    answer = _post(api, body, "csv")
    assert answer.status_code == 422
    assert "TradeID" in answer.json()["detail"] and "ExecID" in answer.json()["detail"]


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_the_csv_delimiter_is_detected(api, delimiter):
    frame = pl.DataFrame([trade("S1", price="3300.5"), trade("S2")])
    out = io.BytesIO()
    frame.write_csv(out, separator=delimiter)
    answer = _post(api, out.getvalue(), "csv", atomic="true")
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2
    assert stored_trades(api.engine)["S1"].price == 3300.5


def test_a_semicolon_file_with_fix_names_is_ingested(engine, catalogue, tmp_path):
    exchange_key(engine, "BJCX")
    path = tmp_path / "fix.csv"
    pl.DataFrame([trade("P1"), trade("P2")]).rename(FIX_NAMES).write_csv(path, separator=";")
    result = ingest_file(engine, catalogue, path, "BJCX", archive_dir=tmp_path / "archive")
    assert (result.accepted, result.rejected) == (2, 0)


def test_a_file_without_a_required_column_is_refused(engine, catalogue, tmp_path):
    from core.errors import IngestError

    exchange_key(engine, "BJCX")
    path = tmp_path / "bad.csv"
    path.write_text("id,px\n1,2\n")
    with pytest.raises(IngestError, match=r"trade_id.*'id'"):
        ingest_file(engine, catalogue, path, "BJCX", archive_dir=tmp_path / "archive")
    assert stored_counts(engine)["trades"] == 0


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_a_key_twice_in_one_object_is_422_naming_it(api, fmt):
    row = json.dumps(trade("K1")).replace('"price": "3300"', '"price": "3300", "price": "1"')
    body = f"[{row}]" if fmt == "json" else row + "\n"
    answer = _post(api, body.encode(), fmt)
    assert answer.status_code == 422, answer.text
    assert "'price' twice" in answer.json()["detail"]
    assert stored_counts(api.engine)["trades"] == 0


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_keys_are_matched_in_any_case_and_by_alias(api, fmt):
    rows = [{FIX_NAMES.get(k, k).upper(): v for k, v in trade(f"J{i}").items()} for i in (1, 2)]
    body = json.dumps(rows) if fmt == "json" else "".join(json.dumps(r) + "\n" for r in rows)
    answer = _post(api, body.encode(), fmt, atomic="true")
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2
