"""Serving a ten-year daily series over HTTP, beside a trivial endpoint of the same server.

uvicorn runs in a subprocess on 127.0.0.1 (one worker), once with the per-process answer
cache (``response_cache_mb=64``) and once without it (``response_cache_mb=0``: every answer
read from the database and rendered); one keep-alive client asks in turn for the series
(JSON, CSV, Arrow, Parquet) and for ``/healthz`` (the trivial peer), in alternating
blocks, and reports requests/s and p99 latency of each and the ratio series/trivial
(targets: ≥ 0.3 uncached, ≥ 0.75 cached), and the server's CPU time per request of
each, whose ratio holds when other processes share the machine. Run:

    .venv/bin/pytest benchmarks/bench_api.py --benchmark-enable -s

``BCPI_BENCH_DATABASE_URL`` runs it on another database (PostgreSQL, say).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.series_server import TEN_YEARS, ten_year_series

BLOCKS = int(os.environ.get("BCPI_BENCH_BLOCKS", "10"))
PER_BLOCK = int(os.environ.get("BCPI_BENCH_REQUESTS", "40"))
TARGETS = {"uncached": 0.3, "cached": 0.75}


@pytest.fixture(scope="module", params=["cached", "uncached"])
def server(request, tmp_path_factory):
    with ten_year_series(tmp_path_factory, request.param) as running:
        yield running


def _timed(client: httpx.Client, path: str, params: dict) -> float:
    started = time.perf_counter()
    answer = client.get(path, params=params)
    answer.read()
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200
    return elapsed


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time the server process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _block(client, pid, path, params, count) -> tuple[list[float], float]:
    """``count`` requests: their latencies and the server's CPU seconds for them."""
    before = _cpu_seconds(pid)
    latencies = [_timed(client, path, params) for _ in range(count)]
    return latencies, _cpu_seconds(pid) - before


def _figures(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return len(latencies) / sum(latencies), p99


@pytest.mark.parametrize("fmt", ["json", "csv", "arrow", "parquet"])
def test_ten_year_series_against_trivial_endpoint(benchmark, server, fmt):
    params = {"format": fmt}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        body = client.get("/v1/indices/BCPI/series", params=params).content
        points = body.count(b"\n") - 1 if fmt == "csv" else len(TEN_YEARS)
        for _ in range(20):  # warm up both paths
            _timed(client, "/healthz", {})
            _timed(client, "/v1/indices/BCPI/series", params)
        trivial, series = [], []
        trivial_cpu = series_cpu = 0.0
        pid = server.process.pid
        for _ in range(BLOCKS):
            latencies, cpu = _block(client, pid, "/healthz", {}, PER_BLOCK)
            trivial += latencies
            trivial_cpu += cpu
            latencies, cpu = _block(client, pid, "/v1/indices/BCPI/series", params, PER_BLOCK)
            series += latencies
            series_cpu += cpu
        benchmark.pedantic(
            _timed, args=(client, "/v1/indices/BCPI/series", params), rounds=50, iterations=1
        )
    trivial_rate, trivial_p99 = _figures(trivial)
    series_rate, series_p99 = _figures(series)
    ratio = series_rate / trivial_rate
    # Server CPU per request: on a busy machine the rates measure the neighbours too.
    cpu_ratio = trivial_cpu / series_cpu if series_cpu else float("nan")
    benchmark.extra_info.update(
        {
            "points": points,
            "bytes": len(body),
            "series_rps": round(series_rate, 1),
            "series_p99_ms": round(series_p99 * 1000, 2),
            "trivial_rps": round(trivial_rate, 1),
            "trivial_p99_ms": round(trivial_p99 * 1000, 2),
            "ratio": round(ratio, 3),
            "series_cpu_ms": round(series_cpu / len(series) * 1000, 3),
            "trivial_cpu_ms": round(trivial_cpu / len(trivial) * 1000, 3),
            "cpu_ratio": round(cpu_ratio, 3),
        }
    )
    print(
        f"\n{server.label:>8} {fmt:>5}: {points} points, {len(body) / 1024:.0f} KiB: "
        f"{series_rate:.0f} req/s (p99 {series_p99 * 1000:.1f} ms, median "
        f"{statistics.median(series) * 1000:.1f} ms) vs /healthz {trivial_rate:.0f} req/s "
        f"(p99 {trivial_p99 * 1000:.1f} ms): ratio {ratio:.2f} (target ≥ {TARGETS[server.label]}); "
        f"server CPU per request {series_cpu / len(series) * 1000:.2f} ms vs "
        f"{trivial_cpu / len(trivial) * 1000:.2f} ms: ratio {cpu_ratio:.2f}"
    )
    assert points == len(TEN_YEARS)
