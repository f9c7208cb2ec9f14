"""Benchmarks run only when asked: ``.venv/bin/pytest benchmarks --benchmark-enable -s``.

Without ``--benchmark-enable`` (``addopts`` disables them) each benchmark runs its function
once, as a test of its answer, and on quick sizes: every ``BCPI_BENCH_*`` size not set in
the environment takes the value below instead of its full-run default.
"""

from __future__ import annotations

import os

import pytest

QUICK_SIZES = {
    "BCPI_BENCH_TRADES": "200000",
    "BCPI_BENCH_DAYS": "100",
    "BCPI_BENCH_INGEST_ROWS": "50000",
    "BCPI_BENCH_STORE_ROWS": "200000",
    "BCPI_BENCH_PUSHES": "2",
    "BCPI_BENCH_BLOCKS": "2",
    "BCPI_BENCH_REQUESTS": "10",
}


def benchmarks_disabled(config: pytest.Config) -> bool:
    """As pytest-benchmark decides it."""
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


def pytest_configure(config: pytest.Config) -> None:
    if benchmarks_disabled(config):
        for name, value in QUICK_SIZES.items():
            os.environ.setdefault(name, value)
