"""Parse + validate + normalise a CSV feed, the product's Polars path, beside plain Polars.

The file holds ``BCPI_BENCH_INGEST_ROWS`` (default 10 million) valid trades of every
commodity (iron ore with Fe and moisture, cotton with its grade). The product path is the
one ``bcpi ingest`` takes: the file read in batches of 100,000 rows (read ahead by a
thread), two batches at a time parsed strictly, checked and normalised in worker threads,
then shaped for storage; nothing stored. Peers, in the same run:

- a typed ``pl.read_csv`` of the same file (numbers as floats, ``seq`` as an integer,
  ``traded_at`` parsed to UTC instants; no checks). Target: bcpi ≥ 0.3× its rate;
- the same read followed by a ``pandera`` Polars ``DataFrameModel`` holding the feed's rules
  as far as pandera expresses them (types, non-empty identifiers, catalogue codes,
  currencies, units and grades, positive prices and quantities, the quantity band,
  percentages in range, unique trade ids), validated lazily. bcpi must be faster.

With benchmarks enabled, a last test times each step alone on one 100,000-row batch (bcpi's
text read, its check and normalisation, the typed read with and without its date parsing,
pandera's validation). Run:

    .venv/bin/pytest benchmarks/bench_ingest_parse.py --benchmark-enable -s

A quick run: ``BCPI_BENCH_INGEST_ROWS=1000000``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pandera.polars as pa
import polars as pl
import pytest

from benchmarks.conftest import benchmarks_disabled
from benchmarks.timing import best_seconds
from cli.synthetic import ticks
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.methodology import in_force
from core.settings import Settings
from ingest.batch import IngestContext, check_batch
from ingest.files import checked_batches
from ingest.readers import feed_batches, prefetched
from ingest.rules import FxTable, build_rules
from ingest.validate import validated_frame

ROWS = int(os.environ.get("BCPI_BENCH_INGEST_ROWS", "10000000"))
BATCH = 100_000
TARGET = 0.3
RESULTS: dict[str, float] = {}
TYPED = {
    "price": pl.Float64,
    "quantity": pl.Float64,
    "fe_pct": pl.Float64,
    "moisture_pct": pl.Float64,
    "seq": pl.Int64,
}
_CATALOGUE = load_catalogue(Settings().catalogue_path)
COMMODITIES = sorted(c.code for c in _CATALOGUE.commodities)
CURRENCIES = ["CNY", "USD", "EUR", "GBP", "JPY", "HKD", "SGD", "AUD"]
UNITS = ["t", "dmt", "wmt", "m3", "tCO2e", "lb", "kg"]
GRADES = ["3128B", "2129B", "2227B", "3129B", "4128B"]


class TradeFeed(pa.DataFrameModel):
    """The feed's row rules as a pandera Polars schema (the peer)."""

    trade_id: str = pa.Field(unique=True, str_length={"min_value": 1, "max_value": 128})
    commodity: str = pa.Field(isin=COMMODITIES)
    traded_at: pl.Datetime(time_unit="us", time_zone="UTC") = pa.Field(  # type: ignore[valid-type]
        ge=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    )
    price: float = pa.Field(gt=0)
    quantity: float = pa.Field(gt=0, le=1e12)
    currency: str = pa.Field(isin=CURRENCIES)
    unit: str = pa.Field(isin=UNITS)
    fe_pct: float = pa.Field(nullable=True, gt=0, le=100)
    moisture_pct: float = pa.Field(nullable=True, ge=0, lt=100)
    grade: str = pa.Field(nullable=True, isin=GRADES)
    seq: int = pa.Field(nullable=True, ge=0)

    class Config:
        strict = True


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


def _context() -> IngestContext:
    catalogue = load_catalogue(Settings().catalogue_path)
    ids = {c.code: i + 1 for i, c in enumerate(catalogue.commodities)}
    return IngestContext(
        exchange_id=1,
        exchange_code="BENCH",
        rules=build_rules(catalogue, ids, Calendar(in_force())),
        fx=FxTable.from_rows([]),
        now=dt.datetime.now(dt.UTC),
        future_tolerance=dt.timedelta(minutes=5),
    )


def product_path(path: Path) -> int:
    ctx = _context()
    stored = rejected = 0
    for _, checked in checked_batches(ctx, prefetched(feed_batches(path, BATCH))):
        stored += checked.good.height
        rejected += checked.bad.height
    assert (stored, rejected) == (ROWS, 0)
    return stored


def typed_read_csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, schema_overrides=TYPED, try_parse_dates=True)


def plain_polars(path: Path) -> int:
    return typed_read_csv(path).height


def pandera_peer(path: Path) -> int:
    return TradeFeed.validate(typed_read_csv(path), lazy=True).height


def _report(name: str, benchmark) -> None:
    seconds = best_seconds(benchmark)
    if seconds is None:
        return
    RESULTS[name] = ROWS / seconds
    print(f"\n{name}: {RESULTS[name]:,.0f} ticks/s ({ROWS:,} rows, best of the rounds)")
    if len(RESULTS) == 3:
        ratio = RESULTS["bcpi"] / RESULTS["polars read_csv"]
        verdict = "meets" if ratio >= TARGET else "misses"
        print(
            f"bcpi parse+validate+normalise / typed pl.read_csv = {ratio:.2f}"
            f" ({verdict} the {TARGET} target);"
            f" bcpi / pandera = {RESULTS['bcpi'] / RESULTS['pandera']:.2f}"
        )


def test_plain_polars_read_csv(benchmark, feed):
    rows = benchmark.pedantic(plain_polars, args=(feed,), rounds=3, iterations=1)
    assert rows == ROWS
    _report("polars read_csv", benchmark)


def test_pandera_polars_schema(benchmark, feed):
    rows = benchmark.pedantic(pandera_peer, args=(feed,), rounds=3, iterations=1)
    assert rows == ROWS
    _report("pandera", benchmark)


def test_bcpi_parse_validate_normalise(benchmark, feed):
    rows = benchmark.pedantic(product_path, args=(feed,), rounds=3, iterations=1)
    assert rows == ROWS
    _report("bcpi", benchmark)


def _best(step, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def test_where_the_time_goes(feed, capsys, request):
    """One 100,000-row batch (or the whole quick file), each step alone, one at a time."""
    ctx = _context()
    text = next(feed_batches(feed, BATCH))
    lines = feed.read_bytes().split(b"\n", text.height + 1)
    head = b"\n".join(lines[: text.height + 1]) + b"\n"
    typed = pl.read_csv(head, schema_overrides=TYPED, try_parse_dates=True)
    checked = validated_frame(text.lazy(), ctx.rules, ctx.fx, now=ctx.now)
    steps = {
        "bcpi text read of the batch (feed_batches)": lambda: next(feed_batches(feed, BATCH)),
        "bcpi validate + normalise (check_batch)": lambda: check_batch(ctx, text),
        "  validated_frame alone, every column collected": lambda: checked.collect(),
        "typed pl.read_csv of the same rows": lambda: pl.read_csv(
            head, schema_overrides=TYPED, try_parse_dates=True
        ),
        "  the same without parsing traded_at": lambda: pl.read_csv(head, schema_overrides=TYPED),
        "pandera validation of the typed frame": lambda: TradeFeed.validate(typed, lazy=True),
    }
    rounds = 1 if benchmarks_disabled(request.config) else 5
    costs = {name: _best(step, rounds) for name, step in steps.items()}
    if rounds == 1:
        return  # a test of the steps only: no timing to report
    with capsys.disabled():
        print(f"\nwhere the time goes, {text.height:,} rows, best of {rounds}, one step at a time:")
        for name, seconds in costs.items():
            print(f"  {name}: {seconds * 1000:,.0f} ms")
