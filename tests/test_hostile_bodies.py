"""Bodies built to exhaust the server: refused with 413, naming the limit and what was
seen, before their rows are built; and every member of a multi-member gzip body read.

In process, with small limits: too many rows in every format (counted from Arrow and
Parquet metadata, or counted while scanning text), too many columns, an Arrow body whose
buffers decode past the body limit. Against a real ``bcpi serve`` under a 1.5 GiB address
space limit: an Arrow stream of 10 million rows (zstd, dictionary-encoded strings, constant
floats) in tens of kB, a gzip body of ``[{},{},…]`` inflating to 30 MB, a CSV header of
6.76 million columns, and a Parquet file of 10 million rows. Each is 413, the server's
resident memory grows by less than the
96 MB a body within the 32 MB limit may take (peak included), and it answers afterwards.
"""

from __future__ import annotations

import gzip
import io
import resource
import subprocess
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from store.bootstrap import prepare_database
from store.db import make_engine
from tests.feeds_support import MEDIA, client_for, encode, exchange_key, stored_counts, trade
from tests.test_abuse_limits import Server, _environment

MB = 1024 * 1024
ADDRESS_SPACE = 1536 * MB
# A body within the 32 MB limit is held, inflated, with one copy while it is joined.
BODY_ALLOWANCE = 96 * MB


def _arrow(table: pa.Table, repeat: int = 1) -> bytes:
    sink = io.BytesIO()
    options = ipc.IpcWriteOptions(compression="zstd")
    with ipc.new_stream(sink, table.schema, options=options) as writer:
        for _ in range(repeat):
            writer.write_table(table)
    return sink.getvalue()


def _trades_table(rows: int) -> pa.Table:
    """``rows`` copies of one trade: dictionary-encoded strings, constant floats."""
    row = trade("T")
    columns = {}
    for name, value in row.items():
        if name in ("price", "quantity"):
            columns[name] = pa.array([float(value)] * rows)
        else:
            columns[name] = pa.DictionaryArray.from_arrays(
                pa.array([0] * rows, pa.int32()), pa.array([value])
            )
    return pa.table(columns)


def _status(pid: int) -> dict[str, int]:
    """VmSize, VmRSS and VmHWM (peak resident) of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmSize", "VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _empty_objects(count: int) -> bytes:
    return b"[" + b"{}," * (count - 1) + b"{}]"


@pytest.fixture
def small(engine, database_url, tmp_path):
    settings = {"max_body_bytes": 64 * 1024, "rows_per_batch": 50}
    with client_for(database_url, tmp_path / "archive", **settings) as client:
        client.engine = engine
        client.key = exchange_key(engine, "BJCX")
        yield client


def _post(api, body: bytes, fmt: str, **headers):
    headers = {"X-API-Key": api.key, "Content-Type": MEDIA[fmt], **headers}
    return api.post("/v1/trades", content=body, headers=headers, params={"atomic": "true"})


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "parquet", "arrow"])
def test_one_row_over_the_limit_is_413_naming_it_in_every_format(small, fmt):
    answer = _post(small, encode([trade(f"R{i}") for i in range(51)], fmt), fmt)
    assert answer.status_code == 413, answer.text
    detail = answer.json()["detail"]
    assert "51 rows exceed the limit of 50 rows" in detail
    assert stored_counts(small.engine)["trades"] == 0
    fifty = _post(small, encode([trade(f"R{i}") for i in range(50)], fmt), fmt)
    assert fifty.status_code == 200 and fifty.json()["accepted"] == 50


def test_empty_objects_count_as_rows(small):
    answer = _post(small, _empty_objects(20_000), "json", **{"Content-Encoding": "gzip"})
    assert answer.status_code == 422  # not gzip: the header says so, the body is not
    answer = _post(
        small, gzip.compress(_empty_objects(20_000)), "json", **{"Content-Encoding": "gzip"}
    )
    assert answer.status_code == 413
    assert "at least 51 rows exceed the limit of 50" in answer.json()["detail"]
    lines = _post(small, b"{}\n" * 51, "ndjson")
    assert lines.status_code == 413
    assert "at least 51 rows exceed the limit of 50" in lines.json()["detail"]


def test_arrow_row_count_is_read_from_the_message_headers(small):
    answer = _post(small, _arrow(_trades_table(10), repeat=6), "arrow")
    assert answer.status_code == 413
    assert answer.json()["detail"].startswith("at least 60 rows exceed the limit of 50 rows")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_too_many_columns_are_413_naming_the_limit(engine, database_url, tmp_path, fmt):
    row = {**trade("W1"), **{f"extra_{i}": "x" for i in range(300)}}
    with client_for(database_url, tmp_path / "archive") as api:
        api.key = exchange_key(engine, "BJCX")
        answer = _post(api, encode([row], fmt), fmt)
    assert answer.status_code == 413, answer.text
    assert "307 columns exceed the limit of 256 columns" in answer.json()["detail"]


def test_arrow_buffers_decoding_past_the_body_limit_are_413(small):
    table = pa.table({**{n: [v] * 20 for n, v in trade("B").items()}, "grade": ["g" * MB] * 20})
    body = _arrow(table)
    assert len(body) < 64 * 1024
    answer = _post(small, body, "arrow")
    assert answer.status_code == 413
    assert "exceeds the limit of 65536 bytes" in answer.json()["detail"]


def test_parquet_pages_decoding_past_the_body_limit_are_413(small):
    rows = {**{n: [v] * 20 for n, v in trade("P").items()}, "grade": ["g" * MB] * 20}
    body = _parquet(pa.table(rows))
    assert len(body) < 64 * 1024
    answer = _post(small, body, "parquet")
    assert answer.status_code == 413
    assert "exceeds the limit of 65536 bytes" in answer.json()["detail"]


def test_every_gzip_member_is_read_counted_and_archived(engine, database_url, tmp_path):
    first = encode([trade("G1"), trade("G2")], "csv")
    second = encode([trade("G3")], "csv").split(b"\n", 1)[1]
    body = gzip.compress(first) + gzip.compress(second)
    with client_for(database_url, tmp_path / "archive") as api:
        api.key = exchange_key(engine, "BJCX")
        answer = _post(api, body, "csv", **{"Content-Encoding": "gzip"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 3
    archived = [p.read_bytes() for p in (tmp_path / "archive").rglob("*") if p.is_file()]
    assert archived == [first + second]


def test_truncated_second_gzip_member_is_422(small):
    body = gzip.compress(encode([trade("G1")], "csv")) + gzip.compress(b"G2,REBAR")[:12]
    answer = _post(small, body, "csv", **{"Content-Encoding": "gzip"})
    assert answer.status_code == 422
    assert stored_counts(small.engine)["trades"] == 0


class LimitedServer(Server):
    """``bcpi serve`` with its address space limited to ``ADDRESS_SPACE``."""

    def __init__(self, env: dict, log) -> None:
        real = subprocess.Popen

        def limited(*args, **kwargs):
            def limit() -> None:
                resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

            return real(*args, preexec_fn=limit, **kwargs)

        subprocess.Popen = limited
        try:
            super().__init__(env, log)
        finally:
            subprocess.Popen = real


def test_hostile_bodies_get_413_without_the_server_growing(
    database_url, catalogue, tmp_path, capsys
):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    key = exchange_key(engine, "BJCX")
    engine.dispose()
    huge = 10_000_000
    cases = [
        ("arrow, 10M rows, zstd", "arrow", _arrow(_trades_table(huge // 10), repeat=10), {}),
        ("parquet, 10M rows", "parquet", _parquet(_trades_table(huge)), {}),
        ("json [{},…], gzip", "json", gzip.compress(_empty_objects(huge), 9), {"gzip": 1}),
        ("csv, 6.76M columns", "csv", gzip.compress(b"a," * 6_760_000 + b"a\n", 9), {"gzip": 1}),
    ]
    # One malloc arena per thread would reserve most of the address space before a request.
    env = {**_environment(database_url, tmp_path), "MALLOC_ARENA_MAX": "2"}
    server = LimitedServer(env, tmp_path / "server.log")
    lines, worst = [], 0
    try:
        headers = {"X-API-Key": key}
        for i in range(3):  # warm up every format's path
            for fmt in ("json", "csv", "parquet", "arrow"):
                body = encode([trade(f"W{i}{fmt}")], fmt)
                warm = httpx.post(
                    server.url + "/v1/trades",
                    content=body,
                    headers={**headers, "Content-Type": MEDIA[fmt]},
                )
                assert warm.status_code == 200, warm.text
        before = _status(server.process.pid)
        for name, fmt, body, flags in cases:
            head = {**headers, "Content-Type": MEDIA[fmt]}
            if flags.get("gzip"):
                head["Content-Encoding"] = "gzip"
            started = time.monotonic()
            answer = httpx.post(server.url + "/v1/trades", content=body, headers=head, timeout=60)
            took = time.monotonic() - started
            after = _status(server.process.pid)
            grew = max(after["VmRSS"], after["VmHWM"]) - before["VmRSS"]
            lines.append(
                f"  {name}: {len(body) / 1024:.0f} kB, {answer.status_code} in {took:.2f} s,"
                f" RSS {(after['VmRSS'] - before['VmRSS']) / MB:+.1f} MB,"
                f" peak {(after['VmHWM'] - before['VmRSS']) / MB:+.1f} MB;"
                f" {answer.json()['detail'][:90]}"
            )
            assert answer.status_code == 413, (name, answer.text)
            assert "limit" in answer.json()["detail"]
            worst = max(worst, grew)
        assert httpx.get(server.url + "/healthz").status_code == 200
        again = httpx.post(
            server.url + "/v1/trades",
            content=encode([trade("AFTER")], "csv"),
            headers={**headers, "Content-Type": "text/csv"},
        )
        assert again.status_code == 200 and again.json()["accepted"] == 1
    finally:
        server.stop()
    with capsys.disabled():
        print(
            f"\nhostile bodies on {database_url.split(':')[0]}"
            f" (address space {ADDRESS_SPACE // MB} MB):\n" + "\n".join(lines)
        )
    assert worst < BODY_ALLOWANCE, lines
