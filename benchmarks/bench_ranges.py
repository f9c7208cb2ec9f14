"""Byte-range reads of a ten-year daily series in Parquet, as Polars makes them, beside a
trivial endpoint of the same server.

uvicorn runs in a subprocess on 127.0.0.1 (one worker), once with the per-process answer
cache (the default: every range is a slice of the cached answer) and once without it
(``response_cache_mb=0``: each range request makes the whole answer again). One keep-alive
client makes, in turn, the requests of a URL reader (``HEAD``, then ``Range: bytes=-262144``
for the footer, then ``bytes=0-3`` for the magic number) and ``/healthz`` (the trivial
peer), in alternating blocks, and reports requests/s and p99 latency of each and the ratio
range/trivial (target ≥ 0.5). Run:

    .venv/bin/pytest benchmarks/bench_ranges.py --benchmark-enable -s

``BCPI_BENCH_DATABASE_URL`` runs it on another database (PostgreSQL, say).
"""

from __future__ import annotations

import os
import statistics
import time

import httpx
import polars as pl
import pytest

from benchmarks.series_server import TEN_YEARS, ten_year_series

BLOCKS = int(os.environ.get("BCPI_BENCH_BLOCKS", "10"))
PER_BLOCK = int(os.environ.get("BCPI_BENCH_REQUESTS", "40"))
TARGET = 0.5
SERIES = "/v1/indices/BCPI/series?format=parquet"
READER = [("HEAD", None), ("GET", "bytes=-262144"), ("GET", "bytes=0-3")]


@pytest.fixture(scope="module", params=["cached", "uncached"])
def server(request, tmp_path_factory):
    with ten_year_series(tmp_path_factory, request.param) as running:
        yield running


def _timed(client: httpx.Client, method: str, path: str, byte_range: str | None) -> float:
    headers = {"range": byte_range} if byte_range else {}
    started = time.perf_counter()
    answer = client.request(method, path, headers=headers)
    answer.read()
    elapsed = time.perf_counter() - started
    assert answer.status_code == (206 if byte_range else 200)
    return elapsed


def _read_as_polars(client: httpx.Client) -> list[float]:
    return [_timed(client, method, SERIES, byte_range) for method, byte_range in READER]


def _figures(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return len(latencies) / sum(latencies), p99


def test_parquet_byte_ranges_against_trivial_endpoint(benchmark, server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        size = int(client.head(SERIES).headers["content-length"])
        points = len(pl.read_parquet(server.url + SERIES))  # the reader itself, once
        for _ in range(20):  # warm up both paths
            _timed(client, "GET", "/healthz", None)
            _read_as_polars(client)
        trivial, ranges = [], []
        for _ in range(BLOCKS):
            trivial += [_timed(client, "GET", "/healthz", None) for _ in range(PER_BLOCK)]
            for _ in range(PER_BLOCK // len(READER)):
                ranges += _read_as_polars(client)
        benchmark.pedantic(_read_as_polars, args=(client,), rounds=50, iterations=1)
    trivial_rate, trivial_p99 = _figures(trivial)
    range_rate, range_p99 = _figures(ranges)
    ratio = range_rate / trivial_rate
    benchmark.extra_info.update(
        {
            "points": points,
            "bytes": size,
            "range_rps": round(range_rate, 1),
            "range_p99_ms": round(range_p99 * 1000, 2),
            "trivial_rps": round(trivial_rate, 1),
            "trivial_p99_ms": round(trivial_p99 * 1000, 2),
            "ratio": round(ratio, 3),
        }
    )
    print(
        f"\n{server.label:>8} parquet ranges: {points} points, {size / 1024:.0f} KiB: "
        f"{range_rate:.0f} req/s (p99 {range_p99 * 1000:.1f} ms, median "
        f"{statistics.median(ranges) * 1000:.1f} ms; {range_rate / len(READER):.0f} reads/s) "
        f"vs /healthz {trivial_rate:.0f} req/s (p99 {trivial_p99 * 1000:.1f} ms): "
        f"ratio {ratio:.2f} (target ≥ {TARGET})"
    )
    assert points == len(TEN_YEARS)
