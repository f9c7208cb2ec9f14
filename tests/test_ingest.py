"""File ingest: strict validation with reasons, idempotent storage."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select

from core.errors import IngestError, UnknownExchange
from ingest.files import ingest_file
from store import models
from store.db import session_scope
from store.reference import ensure_exchange

HEADER = "trade_id,commodity,traded_at,price,quantity,currency,unit,fe_pct,moisture_pct,grade,seq"
VALID = [
    "T1,REBAR,2025-03-03T10:00:00+08:00,3300.5,100,CNY,t,,,,1",
    "T2,IRONORE,2025-03-03T02:30:00Z,101.25,35000,USD,dmt,62.0,8.0,,2",
    "T3,COTTON,1740967200000,14500,20,CNY,t,,,3128B,3",
]
# (row text, expected field, expected reason code): each broken in exactly one way.
BAD = [
    ("B1,REBAR,2025-03-03T10:00:00+08:00,-5,100,CNY,t,,,,4", "price", "non_positive_price"),
    ("B2,REBAR,2025-03-03T10:00:00+08:00,3300,0,CNY,t,,,,5", "quantity", "non_positive_quantity"),
    ("B3,REBAR,2025-03-03T10:00:00+08:00,3300,,CNY,t,,,,6", "quantity", "missing_field"),
    ("B4,REBAR,2025-03-03T10:00:00+08:00,1.9x,100,CNY,t,,,,7", "price", "bad_type"),
    ("B5,REBAR,2025-03-03T10:00:00+08:00,NaN,100,CNY,t,,,,8", "price", "not_finite"),
    ("B6,REBAR,2025-03-03T10:00:00+08:00,3300,inf,CNY,t,,,,9", "quantity", "not_finite"),
    ("B7,GOLD,2025-03-03T10:00:00+08:00,3300,100,CNY,t,,,,10", "commodity", "unknown_commodity"),
    ("B8,REBAR,2025-03-03T10:00:00+08:00,3300,100,CNY,m3,,,,11", "unit", "unit_mismatch"),
    ("B9,REBAR,2025-03-03T10:00:00+08:00,3300,100,EUR,t,,,,12", "currency", "currency_mismatch"),
    ("B10,REBAR,2025-03-03T10:00:00+08:00,99999,100,CNY,t,,,,13", "price", "price_out_of_band"),
    ("B11,REBAR,2025-03-03T10:00:00,3300,100,CNY,t,,,,14", "traded_at", "bad_type"),
    ("B12,REBAR,2999-01-01T10:00:00+08:00,3300,100,CNY,t,,,,15", "traded_at", "future_timestamp"),
    ("B13,REBAR,2019-01-01T10:00:00+08:00,3300,100,CNY,t,,,,16", "traded_at", "before_listing"),
    (
        "B14,IRONORE,2025-03-03T10:00:00+08:00,101,35000,USD,dmt,55.0,8.0,,17",
        "fe_pct",
        "quality_out_of_range",
    ),
    ("T1,REBAR,2025-03-03T11:00:00+08:00,3301,100,CNY,t,,,,18", "trade_id", "duplicate_in_batch"),
    (",REBAR,2025-03-03T10:00:00+08:00,3300,100,CNY,t,,,,19", "trade_id", "missing_field"),
    ("B17,REBAR,2025-03-03T10:00:00+08:00,3300,100,CNY,t,,,,1.5", "seq", "bad_type"),
]


def _write(tmp_path: Path, rows: list[str], name: str = "feed.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _trade_count(engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(models.Trade))


@pytest.fixture
def exchange(engine) -> str:
    with session_scope(engine) as session:
        ensure_exchange(session, "BJCX", "Beijing Commodity e-Trading Exchange")
    return "BJCX"


def test_each_malformed_row_is_rejected_with_its_reason_and_valid_rows_are_stored(
    engine, catalogue, exchange, tmp_path
):
    path = _write(tmp_path, VALID + [row for row, _, _ in BAD])
    with session_scope(engine) as session:
        result = ingest_file(session, catalogue, path, exchange)

    assert (result.accepted, result.duplicates, result.rejected) == (len(VALID), 0, len(BAD))
    got = {r.row: (r.field, r.code) for r in result.rejections}
    expected = {len(VALID) + i + 1: (f, c) for i, (_, f, c) in enumerate(BAD)}
    assert got == expected
    assert all(r.message for r in result.rejections)
    assert result.by_reason == dict(Counter(c for _, _, c in BAD))
    assert result.rows == len(VALID) + len(BAD) and len(result.batch_ids) == 1
    assert _trade_count(engine) == len(VALID)


def test_stored_trade_keeps_raw_values_and_utc_instant(engine, catalogue, exchange, tmp_path):
    with session_scope(engine) as session:
        ingest_file(session, catalogue, _write(tmp_path, VALID), exchange)
    with session_scope(engine) as session:
        trades = {t.trade_id: t for t in session.scalars(select(models.Trade))}
    assert trades["T1"].traded_at == dt.datetime(2025, 3, 3, 2, 0, tzinfo=dt.UTC)
    assert trades["T2"].traded_at == dt.datetime(2025, 3, 3, 2, 30, tzinfo=dt.UTC)
    # 1740967200000 ms after the epoch is 2025-03-03 02:00 UTC
    assert trades["T3"].traded_at == dt.datetime(2025, 3, 3, 2, 0, tzinfo=dt.UTC)
    assert trades["T1"].price_raw == 3300.5 and trades["T1"].quantity_raw == 100.0
    assert trades["T2"].attributes == {"fe_pct": 62.0, "moisture_pct": 8.0}
    assert trades["T3"].attributes == {"grade": "3128B"}


def test_ingesting_the_same_file_twice_adds_nothing(engine, catalogue, exchange, tmp_path):
    path = _write(tmp_path, [*VALID, BAD[0][0]])
    with session_scope(engine) as session:
        first = ingest_file(session, catalogue, path, exchange)
    with session_scope(engine) as session:
        second = ingest_file(session, catalogue, path, exchange)
    assert first.accepted == len(VALID)
    assert (second.accepted, second.duplicates, second.rejected) == (0, len(VALID), 1)
    assert _trade_count(engine) == len(VALID)


def test_parquet_feed_is_read_with_the_same_rules(engine, catalogue, exchange, tmp_path):
    csv = _write(tmp_path, [*VALID, BAD[3][0]])
    parquet = tmp_path / "feed.parquet"
    pl.read_csv(csv, infer_schema=False).write_parquet(parquet)
    with session_scope(engine) as session:
        result = ingest_file(session, catalogue, parquet, exchange)
    assert (result.accepted, result.rejected) == (len(VALID), 1)
    assert result.rejections[0].code == "bad_type"
    with session_scope(engine) as session:
        again = ingest_file(session, catalogue, csv, exchange)
    assert (again.accepted, again.duplicates) == (0, len(VALID))


def test_unknown_exchange_and_unreadable_file_are_clear_errors(
    engine, catalogue, exchange, tmp_path
):
    with pytest.raises(UnknownExchange), session_scope(engine) as session:
        ingest_file(session, catalogue, _write(tmp_path, VALID), "NOPE")
    workbook = tmp_path / "feed.xlsx"
    workbook.write_bytes(b"PK\x03\x04")
    with pytest.raises(IngestError, match="unsupported file type"), session_scope(engine) as s:
        ingest_file(s, catalogue, workbook, exchange)
    with pytest.raises(IngestError, match="no such file"), session_scope(engine) as s:
        ingest_file(s, catalogue, tmp_path / "missing.csv", exchange)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not a parquet file at all")
    with pytest.raises(IngestError, match="cannot be read"), session_scope(engine) as s:
        ingest_file(s, catalogue, broken, exchange)
    assert _trade_count(engine) == 0


def _rows(n: int, start: int = 0) -> list[str]:
    return [
        f"F{i},REBAR,2025-03-03T10:00:00+08:00,{3000 + i},10,CNY,t,,,,{i}" for i in range(start, n)
    ]


def test_a_large_file_goes_in_batches_that_share_its_archive(engine, catalogue, exchange, tmp_path):
    import hashlib

    rows = _rows(10)
    rows[6] = rows[6].replace(",10,CNY", ",0,CNY")  # row 7 of the file
    path = _write(tmp_path, rows)
    rejected = tmp_path / "feed.csv.rejected.csv"
    seen = []
    result = ingest_file(
        engine,
        catalogue,
        path,
        exchange,
        archive_dir=tmp_path / "archive",
        rows_per_batch=4,
        rejected_path=rejected,
        progress=seen.append,
    )
    assert (result.rows, result.accepted, result.rejected) == (10, 9, 1)
    assert seen == [4, 4, 2] and len(result.batch_ids) == 3
    assert [(r.row, r.code) for r in result.rejections] == [(7, "non_positive_quantity")]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with session_scope(engine) as session:
        batches = session.scalars(select(models.IngestBatch).order_by(models.IngestBatch.id)).all()
        assert [(b.first_row, b.rows_total, b.accepted) for b in batches] == [
            (1, 4, 4),
            (5, 4, 3),
            (9, 2, 2),
        ]
        assert {(b.sha256, b.archive_path, b.source, b.format) for b in batches} == {
            (digest, f"BJCX/{digest[:2]}/{digest}.csv", "file", "csv")
        }
    assert (tmp_path / "archive" / "BJCX" / digest[:2] / f"{digest}.csv").read_bytes() == (
        path.read_bytes()
    )
    written = pl.read_csv(rejected, infer_schema=False)
    assert written.select("row", "field", "code", "trade_id", "quantity").rows() == [
        ("7", "quantity", "non_positive_quantity", "F6", "0")
    ]


def test_an_interrupted_file_keeps_its_committed_batches_and_resumes(
    engine, catalogue, exchange, tmp_path
):
    path = _write(tmp_path, _rows(12))

    class Interrupted(Exception):
        pass

    def stop_after_two(rows: int, done=[]) -> None:  # noqa: B006 - counts calls
        done.append(rows)
        if len(done) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        ingest_file(
            engine,
            catalogue,
            path,
            exchange,
            rows_per_batch=4,
            archive_dir=tmp_path / "archive",
            progress=stop_after_two,
        )
    assert _trade_count(engine) == 8  # two whole batches, committed

    again = ingest_file(
        engine, catalogue, path, exchange, rows_per_batch=4, archive_dir=tmp_path / "archive"
    )
    assert (again.accepted, again.duplicates) == (4, 8)
    assert _trade_count(engine) == 12


def test_an_unreadable_line_is_a_clear_error(engine, catalogue, exchange, tmp_path):
    broken = [*_rows(9), "F9,REBAR,2025-03-03T10:00:00+08:00,3009,10,CNY,t,,,,9,extra,fields"]
    path = _write(tmp_path, broken)
    with pytest.raises(IngestError, match=r"feed\.csv: cannot be read as a trade feed"):
        ingest_file(engine, catalogue, path, exchange, archive_dir=tmp_path / "archive")


def test_a_file_in_one_session_is_one_transaction(engine, catalogue, exchange, tmp_path):
    broken = [*_rows(9), "F9,REBAR,2025-03-03T10:00:00+08:00,3009,10,CNY,t,,,,9,extra,fields"]
    path = _write(tmp_path, broken)
    with pytest.raises(IngestError), session_scope(engine) as session:
        ingest_file(
            session, catalogue, path, exchange, rows_per_batch=4, archive_dir=tmp_path / "archive"
        )
    assert _trade_count(engine) == 0


def test_a_header_only_file_is_an_empty_batch(engine, catalogue, exchange, tmp_path):
    path = _write(tmp_path, [])
    result = ingest_file(engine, catalogue, path, exchange, archive_dir=tmp_path / "archive")
    assert (result.rows, result.accepted, len(result.batch_ids)) == (0, 0, 1)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(IngestError):
        ingest_file(engine, catalogue, empty, exchange, archive_dir=tmp_path / "archive")
