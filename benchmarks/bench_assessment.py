"""Full assessment over in-memory trades: the Numba core beside Polars and DuckDB.

The same computation in all three: window (daily cut-off), lot filter, two-pass k-sigma
exclusion about the volume-weighted mean, VWAP with count, volume, high, low, distinct
exchanges and the largest exchange's share, and the sufficiency tests. The trades come
sorted by (commodity, time), as the store hands them over, their values validated at
ingest; neither peer re-checks them, and the Numba core is timed the same way (``trusted``)
and, beside it, with every trade's order and values checked again.

    BCPI_BENCH_TRADES=50000000 .venv/bin/pytest benchmarks/bench_assessment.py \\
        --benchmark-enable -s

``BCPI_BENCH_TRADES`` (default 50 million) and ``BCPI_BENCH_DAYS`` (default 1000) size the
run; a quick run: ``BCPI_BENCH_TRADES=1000000``.
"""

from __future__ import annotations

import os

import duckdb
import numpy as np
import polars as pl
import pytest

from benchmarks.timing import best_seconds
from core.methodology import CommodityRule
from index.assessment import KernelParameters, assess_windows

N_TRADES = int(os.environ.get("BCPI_BENCH_TRADES", 50_000_000))
N_DAYS = int(os.environ.get("BCPI_BENCH_DAYS", 1000))
N_COMMODITIES = 10
N_EXCHANGES = 3
DAY_MS = 86_400_000
FIRST_CLOSE = 1_735_714_800_000  # 2025-01-01 15:00 Beijing: the close before window 1
K = 2.0
MIN_LOT = 20.0
MIN_TRADES, MIN_VOLUME, MIN_EXCHANGES, MAX_SHARE = 3, 500.0, 2, 0.8

RESULTS: dict[str, float] = {}


def _rules() -> list[CommodityRule]:
    rule = CommodityRule(
        code="X",
        cutoff="15:00",
        min_lot=MIN_LOT,
        min_volume=MIN_VOLUME,
        min_trades=MIN_TRADES,
        min_exchanges=MIN_EXCHANGES,
        max_exchange_share=MAX_SHARE,
        exclusion="sigma",
        k=K,
        mad_scale=1.4826,
        related=(),
    )
    return [rule] * N_COMMODITIES


@pytest.fixture(scope="module")
def trades():
    """Trades sorted by (commodity, time): random gaps, prices around a level with fat
    tails, lots of 10 t (some below the 20 t minimum), three exchanges."""
    rng = np.random.default_rng(20250102)
    per = N_TRADES // N_COMMODITIES
    n = per * N_COMMODITIES
    commodity = np.repeat(np.arange(N_COMMODITIES, dtype=np.int32), per)
    span = N_DAYS * DAY_MS
    gaps = rng.integers(1, max(2, 2 * span // per), size=n, dtype=np.int64)
    time = np.empty(n, dtype=np.int64)
    for c in range(N_COMMODITIES):
        part = slice(c * per, (c + 1) * per)
        time[part] = FIRST_CLOSE + np.cumsum(gaps[part])
    level = np.repeat(np.linspace(50.0, 5000.0, N_COMMODITIES), per)
    price = np.round(level * (1.0 + 0.01 * rng.standard_t(3, size=n)), 2)
    np.maximum(price, 0.01, out=price)
    quantity = 10.0 * rng.integers(1, 50, size=n).astype(np.float64)
    exchange = rng.integers(0, N_EXCHANGES, size=n, dtype=np.int8)
    closes = np.tile(
        FIRST_CLOSE + DAY_MS * np.arange(N_DAYS + 1, dtype=np.int64), (N_COMMODITIES, 1)
    )
    return commodity, time, price, quantity, exchange, closes


def run_numba(trades, *, checked: bool = False):
    """The Numba core on the trades as the store hands them over (sorted, validated on the
    way in: ``trusted``), the same computation the peers do; ``checked`` also re-checks
    every trade's order and values, which the peers do not."""
    commodity, time, price, quantity, exchange, closes = trades
    return assess_windows(
        commodity,
        time,
        price,
        quantity,
        exchange,
        closes,
        KernelParameters.from_rules(_rules()),
        presorted=True,
        trusted=not checked,
    )


def _frame(trades) -> pl.DataFrame:
    commodity, time, price, quantity, exchange, _ = trades
    return pl.DataFrame(
        {
            "commodity": commodity,
            "time": time,
            "price": price,
            "quantity": quantity,
            "exchange": exchange,
        }
    )


def run_polars(frame: pl.DataFrame) -> pl.DataFrame:
    group = ["commodity", "day"]
    lot = (
        frame.lazy()
        .with_columns(day=(pl.col("time") - FIRST_CLOSE + DAY_MS - 1) // DAY_MS)
        .filter(pl.col("day").is_between(1, N_DAYS), pl.col("quantity") >= MIN_LOT)
        .with_columns(
            mean=(pl.col("price") * pl.col("quantity")).sum().over(group)
            / pl.col("quantity").sum().over(group)
        )
        .with_columns(
            sd=(
                (pl.col("quantity") * (pl.col("price") - pl.col("mean")) ** 2).sum().over(group)
                / pl.col("quantity").sum().over(group)
            ).sqrt()
        )
        .filter(
            (pl.col("sd") == 0) | ((pl.col("price") - pl.col("mean")).abs() <= K * pl.col("sd"))
        )
    )
    shares = (
        lot.group_by([*group, "exchange"])
        .agg(pl.col("quantity").sum().alias("exchange_volume"))
        .group_by(group)
        .agg(pl.col("exchange_volume").max())
    )
    return (
        lot.group_by(group)
        .agg(
            value=(pl.col("price") * pl.col("quantity")).sum(),
            volume=pl.col("quantity").sum(),
            trades=pl.len(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            exchanges=pl.col("exchange").n_unique(),
        )
        .join(shares, on=group)
        .with_columns(
            vwap=pl.col("value") / pl.col("volume"),
            top_share=pl.col("exchange_volume") / pl.col("volume"),
        )
        .with_columns(
            sufficient=(pl.col("trades") >= MIN_TRADES)
            & (pl.col("volume") >= MIN_VOLUME)
            & (pl.col("exchanges") >= MIN_EXCHANGES)
            & (pl.col("top_share") <= MAX_SHARE)
        )
        .collect()
    )


DUCKDB_SQL = f"""
WITH lot AS (
    SELECT commodity, (time - {FIRST_CLOSE} + {DAY_MS - 1}) // {DAY_MS} AS day,
           price, quantity, exchange
    FROM trades
    WHERE quantity >= {MIN_LOT}
      AND (time - {FIRST_CLOSE} + {DAY_MS - 1}) // {DAY_MS} BETWEEN 1 AND {N_DAYS}
),
mean AS (
    SELECT commodity, day, SUM(price * quantity) / SUM(quantity) AS mean
    FROM lot GROUP BY commodity, day
),
spread AS (
    SELECT l.commodity, l.day, m.mean,
           SQRT(SUM(l.quantity * (l.price - m.mean) ^ 2) / SUM(l.quantity)) AS sd
    FROM lot l JOIN mean m USING (commodity, day)
    GROUP BY l.commodity, l.day, m.mean
),
kept AS (
    SELECT l.* FROM lot l JOIN spread s USING (commodity, day)
    WHERE s.sd = 0 OR ABS(l.price - s.mean) <= {K} * s.sd
),
per_exchange AS (
    SELECT commodity, day, MAX(v) AS exchange_volume FROM (
        SELECT commodity, day, exchange, SUM(quantity) AS v FROM kept
        GROUP BY commodity, day, exchange
    ) GROUP BY commodity, day
),
per_window AS (
    SELECT commodity, day, SUM(price * quantity) / SUM(quantity) AS vwap,
           SUM(quantity) AS volume, COUNT(*) AS trades, MAX(price) AS high,
           MIN(price) AS low, COUNT(DISTINCT exchange) AS exchanges
    FROM kept GROUP BY commodity, day
)
SELECT w.*, p.exchange_volume / w.volume AS top_share,
       w.trades >= {MIN_TRADES} AND w.volume >= {MIN_VOLUME}
       AND w.exchanges >= {MIN_EXCHANGES} AND p.exchange_volume / w.volume <= {MAX_SHARE}
       AS sufficient
FROM per_window w JOIN per_exchange p USING (commodity, day)
"""


def run_duckdb(connection, arrow_table) -> pl.DataFrame:
    connection.register("trades", arrow_table)
    return connection.sql(DUCKDB_SQL).pl()


def _record(benchmark, name: str) -> None:
    seconds = best_seconds(benchmark)
    if seconds is None:
        return
    RESULTS[name] = seconds
    benchmark.extra_info["ticks_per_second"] = N_TRADES / seconds
    print(f"\n{name}: {N_TRADES / seconds / 1e6:,.1f} million ticks/s ({seconds:.3f} s best)")


def test_numba(benchmark, trades):
    run_numba(trades)  # compile (cached on disk after the first process)
    result = benchmark.pedantic(run_numba, args=(trades,), rounds=5, iterations=1)
    _record(benchmark, "numba")
    assert result.trades.sum() > 0.8 * N_TRADES


def test_numba_every_trade_checked(benchmark, trades):
    run_numba(trades, checked=True)
    result = benchmark.pedantic(
        run_numba, args=(trades,), kwargs={"checked": True}, rounds=5, iterations=1
    )
    _record(benchmark, "numba, checked")
    unchecked = run_numba(trades)
    np.testing.assert_array_equal(result.vwap, unchecked.vwap)  # the same numbers, bit for bit
    np.testing.assert_array_equal(result.shortfall, unchecked.shortfall)


def test_polars(benchmark, trades):
    frame = _frame(trades)
    result = benchmark.pedantic(run_polars, args=(frame,), rounds=2, iterations=1)
    _record(benchmark, "polars")
    _same_answer(result, run_numba(trades))


def test_duckdb(benchmark, trades):
    table = _frame(trades).to_arrow()
    connection = duckdb.connect()
    result = benchmark.pedantic(run_duckdb, args=(connection, table), rounds=2, iterations=1)
    _record(benchmark, "duckdb")
    _same_answer(result, run_numba(trades))


def _same_answer(peer: pl.DataFrame, numba_result) -> None:
    """The peer computed the same thing: every window's VWAP, count and verdict."""
    peer = peer.sort("commodity", "day")
    c = peer["commodity"].to_numpy().astype(np.int64)
    d = peer["day"].to_numpy().astype(np.int64) - 1
    assert len(peer) == int((numba_result.trades > 0).sum())
    np.testing.assert_allclose(peer["vwap"].to_numpy(), numba_result.vwap[c, d], rtol=1e-9)
    np.testing.assert_array_equal(peer["trades"].to_numpy(), numba_result.trades[c, d])
    np.testing.assert_array_equal(peer["sufficient"].to_numpy(), numba_result.shortfall[c, d] == 0)


def test_ratios():
    if not {"numba", "polars", "duckdb"} <= set(RESULTS):
        pytest.skip("run the three benchmarks in the same session to get the ratios")
    faster_peer = min(RESULTS["polars"], RESULTS["duckdb"])
    rate = {name: N_TRADES / seconds / 1e6 for name, seconds in RESULTS.items()}
    lines = [
        f"assessment of {N_TRADES:,} trades over {N_DAYS} days × {N_COMMODITIES} commodities:",
        f"  numba  {rate['numba']:8.1f} M ticks/s",
    ]
    if "numba, checked" in rate:
        lines.append(f"  numba, every trade re-checked {rate['numba, checked']:8.1f} M ticks/s")
    for peer in ("polars", "duckdb"):
        lines.append(
            f"  {peer} {rate[peer]:8.1f} M ticks/s"
            f"  (numba is {RESULTS[peer] / RESULTS['numba']:.1f}× faster)"
        )
    lines.append(f"  against the faster peer: {faster_peer / RESULTS['numba']:.1f}×")
    verdict = "meets" if rate["numba"] >= 250 else "misses"
    lines.append(f"  target 250 M ticks/s: {verdict}")
    print("\n" + "\n".join(lines))
