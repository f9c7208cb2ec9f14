"""Hostile push bodies: time to refusal (413) and the server's peak memory growth, beside a
normal push of 10,000 trades to the same server.

uvicorn serves the app in a subprocess on 127.0.0.1 (one worker, SQLite, default limits), as
``tests/test_hostile_bodies.py`` does, without its address space limit. The bodies:

- an Arrow IPC stream (zstd, dictionary-encoded strings, constant floats) declaring
  10 million rows in tens of kB;
- a gzip JSON body ``[{},{},…]`` of 10 million empty objects (30 MB inflated);
- a gzip CSV whose header has 6.76 million columns;
- the peer: a normal Arrow push of 10,000 new trades (one trading day), answered 200 after
  its commit.

Each round's time is the client's, request sent to answer read. Memory: before each round
the server's peak resident size is reset (``/proc/<pid>/clear_refs``), and its growth is
the peak after the answer less the resident size before it; the largest over the rounds is
printed. ``BCPI_BENCH_HOSTILE_ROUNDS`` rounds per body (default 5; 1 when benchmarks are
disabled). Run:

    .venv/bin/pytest benchmarks/bench_ingest_hostile.py --benchmark-enable -s
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from benchmarks.conftest import benchmarks_disabled
from cli.synthetic import ticks, trading_days
from core.catalogue import load_catalogue
from core.settings import Settings
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import add_exchange
from tests.publication_server import serve

MB = 1024 * 1024
HUGE = 10_000_000
ROWS = 10_000
MEDIA = {
    "arrow": "application/vnd.apache.arrow.stream",
    "json": "application/json",
    "csv": "text/csv",
}
_TRADE = {
    "trade_id": "T",
    "commodity": "REBAR",
    "traded_at": "2025-03-03T10:00:00+08:00",
    "price": "3500",
    "quantity": "10",
    "currency": "CNY",
    "unit": "t",
}


def _rounds(config: pytest.Config) -> int:
    if benchmarks_disabled(config):
        return 1
    return int(os.environ.get("BCPI_BENCH_HOSTILE_ROUNDS", "5"))


def _hostile_arrow() -> bytes:
    rows = HUGE // 10
    columns = {}
    for name, value in _TRADE.items():
        if name in ("price", "quantity"):
            columns[name] = pa.array([float(value)] * rows)
        else:
            columns[name] = pa.DictionaryArray.from_arrays(
                pa.array([0] * rows, pa.int32()), pa.array([value])
            )
    table = pa.table(columns)
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(compression="zstd")) as w:
        for _ in range(10):
            w.write_table(table)
    return sink.getvalue()


def _empty_objects() -> bytes:
    return gzip.compress(b"[" + b"{}," * (HUGE - 1) + b"{}]", 9)


def _wide_header() -> bytes:
    return gzip.compress(b"a," * 6_760_000 + b"a\n", 9)


# name -> (format, gzip, body builder, answer expected)
CASES: dict[str, tuple[str, bool, Callable[[], bytes], int]] = {
    "arrow, 10 M rows declared, zstd": ("arrow", False, _hostile_arrow, 413),
    "json [{},…] 10 M objects, gzip": ("json", True, _empty_objects, 413),
    "csv, 6.76 M-column header, gzip": ("csv", True, _wide_header, 413),
}
RESULTS: dict[str, tuple[float, float, int]] = {}


def _status(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{root / 'bcpi.db'}"
    engine = make_engine(url)
    prepare_database(engine, load_catalogue(Settings().catalogue_path))
    with session_scope(engine) as session:
        _, key = add_exchange(session, "HOSTILE", "benchmark exchange")
    engine.dispose()
    with serve(url, archive_dir=str(root / "archive")) as running:
        running.key = key
        running.client = httpx.Client(base_url=running.url, timeout=120)
        for n in range(2):  # warm the Arrow path
            answer = _push(running, "arrow", False, _normal_body(100 + n))
            assert answer.status_code == 200, answer.text
        yield running
        running.client.close()


def _push(server, fmt: str, zipped: bool, body: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.key}", "Content-Type": MEDIA[fmt]}
    if zipped:
        headers["Content-Encoding"] = "gzip"
    return server.client.post("/v1/trades", content=body, headers=headers)


DAYS = trading_days(dt.date(2025, 1, 2), 200)


def _normal_body(n: int) -> bytes:
    frame = ticks(ROWS, start=DAYS[n], days=1, seed=n, prefix=f"N{n}-").sort("traded_at")
    out = io.BytesIO()
    frame.write_ipc_stream(out)
    return out.getvalue()


def _timed(server, fmt: str, zipped: bool, bodies: list[bytes], expected: int, benchmark):
    pid = server.process.pid
    pending = iter(bodies)
    seconds: list[float] = []
    growth: list[int] = []

    def one() -> None:
        body = next(pending)
        _reset_peak(pid)
        before = _status(pid)["VmRSS"]
        started = time.perf_counter()
        answer = _push(server, fmt, zipped, body)
        seconds.append(time.perf_counter() - started)
        growth.append(_status(pid)["VmHWM"] - before)
        assert answer.status_code == expected, answer.text[:300]
        if expected == 413:
            assert "limit" in answer.json()["detail"]

    benchmark.pedantic(one, rounds=len(bodies), iterations=1)
    assert server.client.get("/healthz").status_code == 200
    return min(seconds), max(growth), len(bodies[0])


def _report(name: str, result: tuple[float, float, int]) -> None:
    RESULTS[name] = result
    seconds, grew, size = result
    print(
        f"\n{name}: {size / 1024:,.0f} kB body, answered in {seconds * 1000:,.1f} ms"
        f" (best round), server peak growth {grew / MB:+,.1f} MB (worst round)"
    )
    if "normal" in RESULTS and len(RESULTS) == len(CASES) + 1:
        normal = RESULTS["normal"][0]
        for other, (took, _, _) in RESULTS.items():
            if other != "normal":
                print(f"{other}: refusal time / normal push = {took / normal:.2f}")


def test_normal_push_of_10000(benchmark, server, request):
    rounds = _rounds(request.config)
    bodies = [_normal_body(n) for n in range(rounds)]
    result = _timed(server, "arrow", False, bodies, 200, benchmark)
    _report("normal", result)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_body_refused(benchmark, server, request, name):
    fmt, zipped, build, expected = CASES[name]
    body = build()
    result = _timed(server, fmt, zipped, [body] * _rounds(request.config), expected, benchmark)
    _report(name, result)
