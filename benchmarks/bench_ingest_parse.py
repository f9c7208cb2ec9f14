"""Parse + validate + normalise a CSV feed, the product's Polars path, beside plain Polars.

The file holds ``BCPI_BENCH_INGEST_ROWS`` (default 10 million) valid trades of every
commodity (iron ore with Fe and moisture, cotton with its grade). The product path is the
one ``bcpi ingest`` takes: the file read in batches of 100,000 rows (read ahead by a
thread), two batches at a time parsed strictly, checked and normalised in worker threads,
then shaped for storage; nothing stored. The peer is ``pl.read_csv`` of the same file
(type inference, no checks). Target: 5 million ticks/s. Run:

    .venv/bin/pytest benchmarks/bench_ingest_parse.py --benchmark-enable -s

A quick run: ``BCPI_BENCH_INGEST_ROWS=1000000``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest

from benchmarks.timing import best_seconds
from cli.synthetic import ticks
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.methodology import in_force
from core.settings import Settings
from ingest.batch import IngestContext
from ingest.files import checked_batches
from ingest.readers import feed_batches, prefetched
from ingest.rules import FxTable, build_rules

ROWS = int(os.environ.get("BCPI_BENCH_INGEST_ROWS", "10000000"))
BATCH = 100_000
TARGET = 5_000_000
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def feed(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ingest") / "ticks.csv"
    written = 0
    with open(path, "wb") as out:
        while written < ROWS:
            part = min(1_000_000, ROWS - written)
            frame = ticks(part, start=dt.date(2025, 1, 2), seed=written, prefix=f"T{written}-")
            frame.write_csv(out, include_header=written == 0)
            written += part
    return path


def product_path(path: Path) -> int:
    catalogue = load_catalogue(Settings().catalogue_path)
    ids = {c.code: i + 1 for i, c in enumerate(catalogue.commodities)}
    ctx = IngestContext(
        exchange_id=1,
        exchange_code="BENCH",
        rules=build_rules(catalogue, ids, Calendar(in_force())),
        fx=FxTable.from_rows([]),
        now=dt.datetime.now(dt.UTC),
        future_tolerance=dt.timedelta(minutes=5),
    )
    stored = rejected = 0
    for _, checked in checked_batches(ctx, prefetched(feed_batches(path, BATCH))):
        stored += checked.good.height
        rejected += checked.bad.height
    assert (stored, rejected) == (ROWS, 0)
    return stored


def plain_polars(path: Path) -> int:
    return pl.read_csv(path).height


def _report(name: str, benchmark) -> None:
    seconds = best_seconds(benchmark)
    if seconds is None:
        return
    RESULTS[name] = ROWS / seconds
    print(f"\n{name}: {RESULTS[name]:,.0f} ticks/s ({ROWS:,} rows, best of the rounds)")
    if len(RESULTS) == 2:
        ratio = RESULTS["bcpi"] / RESULTS["polars read_csv"]
        verdict = "meets" if RESULTS["bcpi"] >= TARGET else "misses"
        print(
            f"bcpi parse+validate+normalise / plain pl.read_csv = {ratio:.2f}; "
            f"{RESULTS['bcpi']:,.0f} ticks/s {verdict} the {TARGET:,} target"
        )


def test_plain_polars_read_csv(benchmark, feed):
    rows = benchmark.pedantic(plain_polars, args=(feed,), rounds=3, iterations=1)
    assert rows == ROWS
    _report("polars read_csv", benchmark)


def test_bcpi_parse_validate_normalise(benchmark, feed):
    rows = benchmark.pedantic(product_path, args=(feed,), rounds=3, iterations=1)
    assert rows == ROWS
    _report("bcpi", benchmark)
