"""Full recompute of every index over ten years of daily assessments.

1. The computation: commodity indices, then the sector and composite chain-linked
   Laspeyres with an annual rebalance each year (``index.levels.recompute``), beside the
   same computation written with Polars expressions. Target: under one second.
2. The daily fixing's index step on a ten-year SQLite store (read every current
   assessment, recompute every index from its base date, compare with what is published):
   beside the raw ``sqlite3`` driver merely reading the same assessments.

    .venv/bin/pytest benchmarks/bench_indices.py --benchmark-enable -s

``BCPI_BENCH_YEARS`` (default 10) sizes the run.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3

import numpy as np
import polars as pl
import pytest
from sqlalchemy import insert

from benchmarks.timing import best_seconds
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.methodology import IndexFamily, in_force
from core.settings import Settings
from index.computation import Computation
from index.levels import IndexPlan, recompute
from publication.fixing import ComputeReport, publish_index_values
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope

YEARS = int(os.environ.get("BCPI_BENCH_YEARS", 10))
FIRST = dt.date(2016, 1, 4)
TEN_YEARS = in_force().model_copy(
    update={
        "version": "bench-2016",
        "index_family": IndexFamily(base_date=FIRST, base_value=1000.0),
    }
)
"""The methodology in force with its base moved back to ``FIRST``."""
RESULTS: dict[str, float] = {}


def _record(benchmark, name: str) -> bool:
    """Keep the benchmark's best time under ``name``; False when benchmarks are disabled."""
    seconds = best_seconds(benchmark)
    if seconds is not None:
        RESULTS[name] = seconds
    return seconds is not None


def _weekdays(first: dt.date, years: int) -> list[dt.date]:
    last = dt.date(first.year + years, 1, 1)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days)]
    return [d for d in days if d.weekday() < 5]


@pytest.fixture(scope="module")
def history():
    catalogue = load_catalogue(Settings().catalogue_path)
    rng = np.random.default_rng(7)
    days = np.array(_weekdays(FIRST, YEARS), dtype="datetime64[D]")
    n_items = len(catalogue.commodities)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (days.size, n_items)), axis=0))
    suspended = rng.random(prices.shape) < 0.002
    suspended[0] = False
    prices[suspended] = np.nan
    present = np.ones(prices.shape, dtype=np.bool_)
    years = sorted({d.year for d in days.astype(object)})
    weights = in_force().commodities
    weight_sets = [(FIRST, np.array([weights[c.code].weight for c in catalogue.commodities]))]
    for year in years[1:]:
        raw = rng.uniform(0.5, 1.5, n_items)
        weight_sets.append((dt.date(year, 1, 1), raw / raw.sum()))
    plans = [
        IndexPlan("BCPI", "composite", FIRST, 1000.0, tuple(range(n_items)), tuple(weight_sets))
    ]
    for sector in catalogue.sectors:
        members = [i for i, c in enumerate(catalogue.commodities) if c.sector == sector.code]
        sets = tuple(
            (effective, weights[members] / weights[members].sum())
            for effective, weights in weight_sets
        )
        plans.append(IndexPlan(sector.index_code, "sector", FIRST, 1000.0, tuple(members), sets))
    for i, commodity in enumerate(catalogue.commodities):
        plans.append(
            IndexPlan(commodity.code, "commodity", FIRST, 1000.0, (i,), ((FIRST, np.ones(1)),))
        )
    return days, prices, present, plans


def run_numba(days, prices, present, plans):
    return recompute(days, prices, present, plans)


def run_polars(days, prices, plans):
    """The same indices with Polars: forward-filled levels, each period's weighted relatives
    against its reference row, the periods' constants chained in order."""
    columns = [f"c{i}" for i in range(prices.shape[1])]
    frame = pl.DataFrame({"day": days, **{c: prices[:, i] for i, c in enumerate(columns)}})
    base = frame.filter(pl.col("day") == np.datetime64(FIRST, "D")).row(0, named=True)
    filled = frame.with_columns(pl.col(columns).fill_nan(None).forward_fill())
    levels = filled.select("day", *(pl.col(c) / base[c] * 1000.0 for c in columns)).with_row_index(
        "row"
    )
    out = {}
    for plan in plans:
        if plan.kind == "commodity":
            out[plan.code] = frame.select(
                pl.col(columns[plan.members[0]]) / base[columns[plan.members[0]]] * 1000.0
            )
            continue
        members = [columns[i] for i in plan.members]
        years = range(FIRST.year + 1, int(str(days[-1])[:4]) + 1)
        starts = sorted(
            {
                FIRST,
                *(dt.date(y, 1, 1) for y in years),
                *(d for d, _ in plan.weight_sets if d > FIRST),
            }
        )
        periods = pl.DataFrame({"start": pl.Series(starts, dtype=pl.Date)}).with_row_index("period")
        rows = levels.join_asof(periods, left_on="day", right_on="start")
        references = [0] + [
            levels.filter(pl.col("day") < start)["row"].max() for start in starts[1:]
        ]
        weights = [
            max((s for s in plan.weight_sets if s[0] <= start), key=lambda s: s[0])[1]
            for start in starts
        ]
        reference_levels = pl.DataFrame(
            {
                "period": pl.Series(range(len(starts)), dtype=pl.UInt32),
                **{f"r_{m}": [levels[m][r] for r in references] for m in members},
                **{f"w_{m}": [float(w[k]) for w in weights] for k, m in enumerate(members)},
            }
        )
        relative = (
            rows.join(reference_levels, on="period")
            .select(
                "row",
                "period",
                pl.sum_horizontal(
                    pl.col(f"w_{m}") * pl.col(m) / pl.col(f"r_{m}") for m in members
                ).alias("relative"),
            )
            .sort("row")
        )
        relatives = relative["relative"].to_numpy()
        period_of = relative["period"].to_numpy()
        constants = [1000.0]
        for k in range(1, len(starts)):
            r = references[k]
            constants.append(constants[period_of[r]] * relatives[r])
        out[plan.code] = relative.select(
            pl.col("relative") * pl.lit(pl.Series(constants)).gather(pl.col("period"))
        )
    return out


def test_recompute_numba(benchmark, history):
    days, prices, present, plans = history
    run_numba(days, prices, present, plans)  # compile
    results = benchmark.pedantic(
        run_numba, args=(days, prices, present, plans), rounds=10, iterations=1
    )
    assert all(r.skipped is None for r in results)
    if _record(benchmark, "numba"):
        print(
            f"\nrecompute, numba: {RESULTS['numba'] * 1000:.1f} ms "
            f"for {len(plans)} indices × {days.size} days"
        )


def test_recompute_polars(benchmark, history):
    days, prices, present, plans = history
    result = benchmark.pedantic(run_polars, args=(days, prices, plans), rounds=3, iterations=1)
    if _record(benchmark, "polars"):
        print(f"\nrecompute, polars: {RESULTS['polars'] * 1000:.1f} ms")
    for mine in run_numba(days, prices, present, plans):
        theirs = result[mine.plan.code].to_series().to_numpy()
        np.testing.assert_allclose(mine.values, theirs, rtol=1e-10, equal_nan=True)


@pytest.fixture(scope="module")
def store(history, tmp_path_factory):
    """A SQLite store with ten years of assessments and every index value published."""
    days, prices, _, _ = history
    catalogue = load_catalogue(Settings().catalogue_path)
    path = tmp_path_factory.mktemp("bench") / "bcpi.db"
    engine = make_engine(f"sqlite:///{path}")
    prepare_database(engine, catalogue, TEN_YEARS)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with session_scope(engine) as session:
        ids = [c.id for c in session.query(models.Commodity).order_by(models.Commodity.id)]
        rows = []
        for t, day in enumerate(days.astype(object)):
            for c, commodity_id in enumerate(ids):
                price = None if np.isnan(prices[t, c]) else float(prices[t, c])
                rows.append(
                    {
                        "commodity_id": commodity_id,
                        "date": day,
                        "price": price,
                        "trades": 10,
                        "volume": 100.0,
                        "high": price,
                        "low": price,
                        "exchanges": 3,
                        "fallback": "none" if price is not None else "suspended",
                        "rationale": {},
                        "status": "final",
                        "vintage": 1,
                        "methodology_version": "2025.1",
                        "inputs_hash": "0" * 64,
                        "published_at": now,
                    }
                )
        session.execute(insert(models.Assessment), rows)
    with session_scope(engine) as session:
        computation = Computation.load(session, Calendar(TEN_YEARS))
        publish_index_values(
            session, computation, FIRST, now, ComputeReport(start=FIRST, end=FIRST)
        )
    yield engine, path, days[-1].item()
    engine.dispose()


def fixing_index_step(engine, last_day):
    with session_scope(engine) as session:
        report = ComputeReport(start=last_day, end=last_day)
        computation = Computation.load(session, Calendar(TEN_YEARS))
        publish_index_values(session, computation, last_day, dt.datetime.now(dt.UTC), report)
    return report


def raw_read(path):
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT commodity_id, date, price, fallback FROM assessments "
            "WHERE superseded_at IS NULL AND status != 'provisional'"
        ).fetchall()


def test_fixing_index_step_on_a_ten_year_store(benchmark, store):
    engine, _, last_day = store
    report = benchmark.pedantic(fixing_index_step, args=(engine, last_day), rounds=5, iterations=1)
    if _record(benchmark, "service"):
        print(f"\nfixing index step, {YEARS}-year SQLite store: {RESULTS['service'] * 1000:.0f} ms")
    assert report.index_values.unchanged == 15 and report.index_values.new == 0


def test_raw_driver_reads_the_assessments(benchmark, store):
    _, path, _ = store
    rows = benchmark.pedantic(raw_read, args=(path,), rounds=5, iterations=1)
    if _record(benchmark, "raw_read"):
        print(f"\nraw sqlite3 read of the same assessments: {RESULTS['raw_read'] * 1000:.0f} ms")
    assert len(rows) > 20_000


def test_ratios():
    if not {"numba", "polars", "service", "raw_read"} <= set(RESULTS):
        pytest.skip("run every benchmark of this module in one session to get the ratios")
    print(
        f"\nfull recompute of every index over {YEARS} years:"
        f"\n  numba core     {RESULTS['numba'] * 1000:8.1f} ms"
        f"\n  polars         {RESULTS['polars'] * 1000:8.1f} ms"
        f"  (numba is {RESULTS['polars'] / RESULTS['numba']:.1f}× faster)"
        f"\n  fixing step    {RESULTS['service'] * 1000:8.1f} ms"
        " (SQLite: read, recompute, compare)"
        f"\n  raw read       {RESULTS['raw_read'] * 1000:8.1f} ms"
        f"  (the fixing step takes {RESULTS['service'] / RESULTS['raw_read']:.1f}× a bare read)"
    )
    assert RESULTS["numba"] < 1.0
