"""Every index in one request (``GET /v1/series?codes=*``) beside the requests a user would
otherwise make, one per index, and beside a trivial endpoint, in the same run.

uvicorn runs in a subprocess on 127.0.0.1 (one worker) without the answer cache
(``response_cache_mb=0``: every answer read from the database and rendered), holding ten
years of daily values of the composite and the five sector indices (6 × 2,610 points). One
keep-alive client asks, in alternating blocks, for the bulk answer, for the six single
series in turn, and for ``/healthz``; it reports the time of one bulk answer against the
six singles (the speed-up of asking once) and bulk answers/s against ``/healthz``. Run:

    .venv/bin/pytest benchmarks/bench_bulk.py --benchmark-enable -s

``BCPI_BENCH_DATABASE_URL`` runs it on another database (PostgreSQL, say).
"""

from __future__ import annotations

import io
import os
import statistics
import time

import httpx
import polars as pl
import pytest

from benchmarks.series_server import INDICES, TEN_YEARS, ten_year_series

BLOCKS = int(os.environ.get("BCPI_BENCH_BLOCKS", "10"))
PER_BLOCK = int(os.environ.get("BCPI_BENCH_REQUESTS", "10"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ten_year_series(tmp_path_factory, "uncached", INDICES) as running:
        yield running


def _get(client: httpx.Client, path: str, params: dict) -> bytes:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.content


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_every_index_at_once_against_one_request_per_index(benchmark, server, fmt):
    params = {"format": fmt}

    def bulk():
        return _get(client, "/v1/series", {**params, "codes": "*"})

    def singles():
        return [_get(client, f"/v1/indices/{code}/series", params) for code in INDICES]

    def trivial():
        return _get(client, "/healthz", {})

    with httpx.Client(base_url=server.url, timeout=60) as client:
        body = bulk()
        if fmt != "json":
            read = pl.read_csv if fmt == "csv" else pl.read_parquet
            rows = read(io.BytesIO(body)).height
            assert rows == sum(read(io.BytesIO(b)).height for b in singles())
            assert rows == len(INDICES) * len(TEN_YEARS)
        for _ in range(3):  # warm up every path
            bulk(), singles(), trivial()
        bulk_times, single_times, trivial_times = [], [], []
        for _ in range(BLOCKS):
            bulk_times += [_timed(bulk) for _ in range(PER_BLOCK)]
            single_times += [_timed(singles) for _ in range(PER_BLOCK)]
            trivial_times += [_timed(trivial) for _ in range(PER_BLOCK)]
        benchmark.pedantic(bulk, rounds=10, iterations=1)
    bulk_ms = statistics.median(bulk_times) * 1000
    singles_ms = statistics.median(single_times) * 1000
    trivial_rate = len(trivial_times) / sum(trivial_times)
    bulk_rate = len(bulk_times) / sum(bulk_times)
    benchmark.extra_info.update(
        {
            "rows": len(INDICES) * len(TEN_YEARS),
            "bytes": len(body),
            "bulk_ms": round(bulk_ms, 2),
            "six_singles_ms": round(singles_ms, 2),
            "speedup": round(singles_ms / bulk_ms, 2),
            "bulk_rps": round(bulk_rate, 1),
            "trivial_rps": round(trivial_rate, 1),
        }
    )
    print(
        f"\nbulk {fmt:>7}: {len(INDICES)} indices × {len(TEN_YEARS)} points, "
        f"{len(body) / 1024:.0f} KiB: median {bulk_ms:.1f} ms against {singles_ms:.1f} ms for "
        f"the {len(INDICES)} single series ({singles_ms / bulk_ms:.2f}× faster at once); "
        f"{bulk_rate:.0f} answers/s against /healthz {trivial_rate:.0f} req/s "
        f"(ratio {bulk_rate / trivial_rate:.3f})"
    )
