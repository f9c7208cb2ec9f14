"""Methodology 2026.1's assessment over in-memory trades: the Numba core beside Polars and
DuckDB computing the same rule in the same run.

The rule: window (daily cut-off), lot filter, affiliated trades dropped, the median and the
scaled median absolute deviation of the remaining prices with the spread floored at 1% of
the median, exclusion beyond 4 spreads, VWAP with count, volume, high, low, distinct
exchanges, the largest exchange's and the largest participant's (as buyer or as seller on
one exchange) share, and the sufficiency tests. Trades come sorted by (commodity, time),
validated at ingest, as the store hands them over.

    BCPI_BENCH_TRADES=10000000 .venv/bin/pytest benchmarks/bench_assessment_robust.py \\
        --benchmark-enable -s
"""

from __future__ import annotations

import os

import duckdb
import numpy as np
import polars as pl
import pytest

from benchmarks.timing import best_seconds
from core.methodology import load_methodology
from index.assessment import KernelParameters, assess_windows

N_TRADES = int(os.environ.get("BCPI_BENCH_TRADES", 10_000_000))
N_DAYS = int(os.environ.get("BCPI_BENCH_DAYS", 1000))
N_COMMODITIES = 10
N_EXCHANGES = 3
PARTICIPANTS = 12
DAY_MS = 86_400_000
FIRST_CLOSE = 1_735_714_800_000
RULE = load_methodology("2026.1").assessment.rule("REBAR").model_copy(update={"min_lot": 20.0})
K, SCALE, FLOOR = RULE.k, RULE.mad_scale, RULE.scale_floor
MIN_LOT, MIN_TRADES, MIN_VOLUME = RULE.min_lot, RULE.min_trades, RULE.min_volume
MIN_EXCHANGES, MAX_SHARE, MAX_PARTICIPANT = (
    RULE.min_exchanges,
    RULE.max_exchange_share,
    RULE.max_participant_share,
)

RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def trades():
    """Sorted trades with fat-tailed prices, a few fat fingers, 1% affiliated, and buyer and
    seller codes from twelve participants per exchange."""
    rng = np.random.default_rng(20261201)
    per = N_TRADES // N_COMMODITIES
    n = per * N_COMMODITIES
    commodity = np.repeat(np.arange(N_COMMODITIES, dtype=np.int64), per)
    gaps = rng.integers(1, max(2, 2 * N_DAYS * DAY_MS // per), size=n, dtype=np.int64)
    time = np.empty(n, dtype=np.int64)
    for c in range(N_COMMODITIES):
        part = slice(c * per, (c + 1) * per)
        time[part] = FIRST_CLOSE + np.cumsum(gaps[part])
    level = np.repeat(np.linspace(50.0, 5000.0, N_COMMODITIES), per)
    price = np.round(level * (1.0 + 0.01 * rng.standard_t(3, size=n)), 2)
    fat = rng.random(n) < 0.001
    price[fat] *= 2.7
    np.maximum(price, 0.01, out=price)
    quantity = 10.0 * rng.integers(1, 50, size=n).astype(np.float64)
    exchange = rng.integers(0, N_EXCHANGES, size=n, dtype=np.int64)
    affiliated = rng.random(n) < 0.01
    buyer = exchange * PARTICIPANTS + rng.integers(0, PARTICIPANTS, size=n)
    seller = N_EXCHANGES * PARTICIPANTS + exchange * PARTICIPANTS
    seller = seller + rng.integers(0, PARTICIPANTS, size=n)
    closes = np.tile(
        FIRST_CLOSE + DAY_MS * np.arange(N_DAYS + 1, dtype=np.int64), (N_COMMODITIES, 1)
    )
    return commodity, time, price, quantity, exchange, affiliated, buyer, seller, closes


def run_numba(trades):
    commodity, time, price, quantity, exchange, affiliated, buyer, seller, closes = trades
    return assess_windows(
        commodity,
        time,
        price,
        quantity,
        exchange,
        closes,
        KernelParameters.from_rules([RULE] * N_COMMODITIES),
        affiliated=affiliated,
        buyer=buyer,
        seller=seller,
        presorted=True,
        trusted=True,
    )


def _frame(trades) -> pl.DataFrame:
    names = ("commodity", "time", "price", "quantity", "exchange", "affiliated", "buyer", "seller")
    return pl.DataFrame(dict(zip(names, trades[:-1], strict=True)))


def run_polars(frame: pl.DataFrame) -> pl.DataFrame:
    group = ["commodity", "day"]
    eligible = (
        frame.lazy()
        .with_columns(day=(pl.col("time") - FIRST_CLOSE + DAY_MS - 1) // DAY_MS)
        .filter(
            pl.col("day").is_between(1, N_DAYS),
            pl.col("quantity") >= MIN_LOT,
            ~pl.col("affiliated"),
        )
        .with_columns(median=pl.col("price").median().over(group))
        .with_columns(deviation=(pl.col("price") - pl.col("median")).abs())
        .with_columns(
            spread=pl.max_horizontal(
                SCALE * pl.col("deviation").median().over(group), FLOOR * pl.col("median").abs()
            )
        )
        .filter(pl.col("deviation") <= K * pl.col("spread"))
    )

    def top(by: str, name: str):
        return (
            eligible.group_by([*group, by])
            .agg(pl.col("quantity").sum().alias(name))
            .group_by(group)
            .agg(pl.col(name).max())
        )

    return (
        eligible.group_by(group)
        .agg(
            value=(pl.col("price") * pl.col("quantity")).sum(),
            volume=pl.col("quantity").sum(),
            trades=pl.len(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            exchanges=pl.col("exchange").n_unique(),
        )
        .join(top("exchange", "by_exchange"), on=group)
        .join(top("buyer", "by_buyer"), on=group)
        .join(top("seller", "by_seller"), on=group)
        .with_columns(
            vwap=pl.col("value") / pl.col("volume"),
            top_share=pl.col("by_exchange") / pl.col("volume"),
            top_participant=pl.max_horizontal("by_buyer", "by_seller") / pl.col("volume"),
        )
        .with_columns(
            sufficient=(pl.col("trades") >= MIN_TRADES)
            & (pl.col("volume") >= MIN_VOLUME)
            & (pl.col("exchanges") >= MIN_EXCHANGES)
            & (pl.col("top_share") <= MAX_SHARE)
            & (pl.col("top_participant") <= MAX_PARTICIPANT)
        )
        .collect()
    )


DUCKDB_SQL = f"""
WITH eligible AS (
    SELECT commodity, (time - {FIRST_CLOSE} + {DAY_MS - 1}) // {DAY_MS} AS day,
           price, quantity, exchange, buyer, seller
    FROM trades
    WHERE quantity >= {MIN_LOT} AND NOT affiliated
      AND (time - {FIRST_CLOSE} + {DAY_MS - 1}) // {DAY_MS} BETWEEN 1 AND {N_DAYS}
),
centre AS (
    SELECT commodity, day, MEDIAN(price) AS median FROM eligible GROUP BY commodity, day
),
spread AS (
    SELECT e.commodity, e.day, c.median,
           GREATEST({SCALE} * MEDIAN(ABS(e.price - c.median)), {FLOOR} * ABS(c.median)) AS spread
    FROM eligible e JOIN centre c USING (commodity, day)
    GROUP BY e.commodity, e.day, c.median
),
kept AS (
    SELECT e.* FROM eligible e JOIN spread s USING (commodity, day)
    WHERE ABS(e.price - s.median) <= {K} * s.spread
),
by_exchange AS (
    SELECT commodity, day, MAX(v) AS v FROM (
        SELECT commodity, day, exchange, SUM(quantity) AS v FROM kept
        GROUP BY commodity, day, exchange) GROUP BY commodity, day
),
by_participant AS (
    SELECT commodity, day, MAX(v) AS v FROM (
        SELECT commodity, day, buyer AS who, SUM(quantity) AS v FROM kept
        GROUP BY commodity, day, buyer
        UNION ALL
        SELECT commodity, day, seller AS who, SUM(quantity) AS v FROM kept
        GROUP BY commodity, day, seller) GROUP BY commodity, day
),
per_window AS (
    SELECT commodity, day, SUM(price * quantity) / SUM(quantity) AS vwap,
           SUM(quantity) AS volume, COUNT(*) AS trades, MAX(price) AS high,
           MIN(price) AS low, COUNT(DISTINCT exchange) AS exchanges
    FROM kept GROUP BY commodity, day
)
SELECT w.*, x.v / w.volume AS top_share, p.v / w.volume AS top_participant,
       w.trades >= {MIN_TRADES} AND w.volume >= {MIN_VOLUME}
       AND w.exchanges >= {MIN_EXCHANGES} AND x.v / w.volume <= {MAX_SHARE}
       AND p.v / w.volume <= {MAX_PARTICIPANT} AS sufficient
FROM per_window w JOIN by_exchange x USING (commodity, day)
JOIN by_participant p USING (commodity, day)
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


def _same_answer(peer: pl.DataFrame, numba_result) -> None:
    peer = peer.sort("commodity", "day")
    c = peer["commodity"].to_numpy().astype(np.int64)
    d = peer["day"].to_numpy().astype(np.int64) - 1
    assert len(peer) == int((numba_result.trades > 0).sum())
    np.testing.assert_allclose(peer["vwap"].to_numpy(), numba_result.vwap[c, d], rtol=1e-9)
    np.testing.assert_array_equal(peer["trades"].to_numpy(), numba_result.trades[c, d])
    np.testing.assert_array_equal(peer["sufficient"].to_numpy(), numba_result.shortfall[c, d] == 0)


def test_numba(benchmark, trades):
    run_numba(trades)
    result = benchmark.pedantic(run_numba, args=(trades,), rounds=5, iterations=1)
    _record(benchmark, "numba")
    assert result.trades.sum() > 0.8 * N_TRADES


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


def test_ratios():
    if not {"numba", "polars", "duckdb"} <= set(RESULTS):
        pytest.skip("run the three benchmarks in the same session to get the ratios")
    faster_peer = min(RESULTS["polars"], RESULTS["duckdb"])
    rate = {name: N_TRADES / seconds / 1e6 for name, seconds in RESULTS.items()}
    lines = [
        f"2026.1 assessment of {N_TRADES:,} trades over {N_DAYS} days × {N_COMMODITIES} "
        "commodities:",
        f"  numba  {rate['numba']:8.1f} M ticks/s",
    ]
    for peer in ("polars", "duckdb"):
        lines.append(
            f"  {peer} {rate[peer]:8.1f} M ticks/s"
            f"  (numba is {RESULTS[peer] / RESULTS['numba']:.1f}× faster)"
        )
    ratio = faster_peer / RESULTS["numba"]
    lines.append(f"  against the faster peer: {ratio:.1f}× (target ≥ 3×: {ratio >= 3})")
    print("\n" + "\n".join(lines))
