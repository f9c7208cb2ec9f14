"""Backtest of methodology 2026.1 over two years of demo history published under 2025.2.

1. The backtest (``audit.backtest.backtest``): the inputs copied into a scratch database,
   the computation under 2026.1 on every day, the comparison with what was published.
   Target: under one minute.
2. Its peer, what a user would otherwise run: a copy of the SQLite file, then the plain
   recomputation (``publication.fixing.compute``) of the same range under 2026.1 in the
   copy, which restates every value it changes (nothing compared). One round: it is slow.

    .venv/bin/pytest benchmarks/bench_backtest.py --benchmark-enable -s

``BCPI_BENCH_BACKTEST_DAYS`` (default 500 weekdays from 2 January 2025, at most up to
yesterday) sizes the history; without ``--benchmark-enable`` it is 40.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

import pytest

from audit.backtest import backtest
from benchmarks.conftest import benchmarks_disabled
from cli.demo import demo_days, run_pipeline
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.methodology import load_methodology
from core.settings import Settings
from publication.fixing import compute
from publication.vintage import Restating
from store.db import make_engine, read_engine_for, session_scope

START = dt.date(2025, 1, 2)
SECONDS: dict[str, list[float]] = defaultdict(list)


@pytest.fixture(scope="module")
def history(request, tmp_path_factory):
    """A SQLite store: the demo's three exchanges' trades, every day published under 2025.2."""
    quick = "40" if benchmarks_disabled(request.config) else "500"
    wanted = int(os.environ.get("BCPI_BENCH_BACKTEST_DAYS", quick))
    days = min(wanted, demo_days(START, Calendar(load_methodology("2025.2")).today()))
    root = tmp_path_factory.mktemp("backtest")
    url = f"sqlite:///{root / 'bcpi.db'}"
    engine = make_engine(url)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # the demo archives under ./var/archive
        run = run_pipeline(
            engine,
            load_catalogue(Settings().catalogue_path),
            root / "feeds",
            days=days,
            start=START,
            calendar=Calendar(load_methodology("2025.2")),
        )
    engine.dispose()
    yield url, root, run.compute.start, run.compute.end


def _timed(name: str, function, *args):
    started = time.perf_counter()
    result = function(*args)
    SECONDS[name].append(time.perf_counter() - started)
    return result


def run_backtest(url: str):
    methodology = load_methodology("2026.1")
    return backtest(read_engine_for(url), methodology, Calendar(methodology))


def plain_recompute(url: str, root: Path, start: dt.date, end: dt.date):
    source = Path(url.removeprefix("sqlite:///"))
    copy = root / "copy.db"
    shutil.copyfile(source, copy)
    engine = make_engine(f"sqlite:///{copy}")
    methodology = load_methodology("2026.1")
    try:
        with session_scope(engine) as session:
            return compute(
                session,
                start,
                end,
                calendar=Calendar(methodology),
                rules=Restating(methodology.version),
            )
    finally:
        engine.dispose()
        copy.unlink()


def test_backtest_of_2026_1_over_the_history(benchmark, history):
    url, _, start, end = history
    result = benchmark.pedantic(
        _timed, args=("backtest", run_backtest, url), rounds=3, iterations=1
    )
    composite = next(s for s in result.indices if s.index == "BCPI")
    assert (result.start, result.end) == (start, end)
    assert composite.days_compared == result.days > 0
    assert composite.days_differing > 0 and composite.tracking_error > 0
    print(
        f"\nbacktest of 2026.1 over {result.days} publication days ({start}..{end}): "
        f"{min(SECONDS['backtest']):.1f} s"
    )
    print(
        "index      differing  max |Δ|   max |Δ|/v  tracking error  "
        "exclusions/fallbacks/sufficiency changed"
    )
    for s in result.indices:
        print(
            f"{s.index:<10} {s.days_differing:>4}/{s.days_compared:<4} "
            f"{s.max_abs_difference or 0:8.3f}  {s.max_rel_difference or 0:8.4%}  "
            f"{s.tracking_error or 0:12.5f}    "
            f"{s.exclusions_changed_days}/{s.fallbacks_changed_days}/{s.sufficiency_changed_days}"
        )


def test_plain_recompute_into_a_scratch_copy(benchmark, history):
    url, root, start, end = history
    report = benchmark.pedantic(
        _timed,
        args=("recompute", plain_recompute, url, root, start, end),
        rounds=1,
        iterations=1,
    )
    assert report.index_values.restated > 0
    print(
        f"\nplain recomputation under 2026.1 into a copy of the store: "
        f"{min(SECONDS['recompute']):.1f} s"
    )


def test_ratio():
    if not {"backtest", "recompute"} <= set(SECONDS):
        pytest.skip("run both benchmarks of this module in one session to get the ratio")
    ours, peer = min(SECONDS["backtest"]), min(SECONDS["recompute"])
    print(
        f"\nbacktest {ours:.1f} s, plain recomputation into a scratch copy {peer:.1f} s: "
        f"the backtest takes {ours / peer:.2f}× the plain recomputation"
    )
    assert ours < 60
