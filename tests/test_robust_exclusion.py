"""Methodology 2026.1's exclusion: one fat finger cannot mask itself, ordinary windows keep
their trades, and the arm's-length rules; each against hand computations."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from core.methodology import load_methodology
from index.assessment import KernelParameters, assess_windows, failed_tests
from index.kernels.assessment import AFFILIATED, OUTLIER, USED

CLOSES = np.array([[0, 1000]], dtype=np.int64)


def _rule(version: str = "2026.1", **changes):
    """The shipped rule of a commodity without a minimum lot, changes applied."""
    rule = load_methodology(version).assessment.rule("REBAR")
    return rule.model_copy(update={"min_lot": 0.0, "min_volume": 0.0, **changes})


def _assess(prices, quantities, exchanges, rule=None, **participants):
    n = len(prices)
    return assess_windows(
        np.zeros(n, dtype=np.int64),
        np.arange(1, n + 1),
        np.array(prices, dtype=np.float64),
        np.array(quantities, dtype=np.float64),
        np.array(exchanges),
        CLOSES,
        KernelParameters.from_rules([rule or _rule()]),
        with_flags=True,
        **participants,
    )


def test_the_old_rule_lets_the_fat_finger_make_the_price():
    # Under 2025.2's 2-sigma rule: equal lots at 3300, 3305, 9000 keep every trade, and the
    # VWAP is their mean (3300 + 3305 + 9000) / 3 = 5201.67: +58% on a 3300 market.
    stats = _assess([3300.0, 3305.0, 9000.0], [100.0] * 3, [0, 1, 0], _rule("2025.2"))
    assert stats.flags.tolist() == [USED] * 3
    assert stats.vwap[0, 0] == pytest.approx(15605.0 / 3)


@pytest.mark.parametrize("share", [1 / 3, 0.01, 0.10, 0.20, 0.25, 0.40, 0.45, 0.49])
def test_the_fat_finger_is_excluded_at_any_volume_share_below_half(share):
    # The two ordinary trades share the rest of the volume equally.
    other = (1 - share) / 2 * 1000.0
    stats = _assess([3300.0, 3305.0, 9000.0], [other, other, share * 1000.0], [0, 1, 0])
    assert stats.flags.tolist() == [USED, USED, OUTLIER]
    # Two trades remain: fewer than min_trades = 3, so the window is insufficient and the
    # day takes the fallback instead of any VWAP.
    assert failed_tests(int(stats.shortfall[0, 0])) == ["min_trades"]
    assert stats.vwap[0, 0] == pytest.approx(3302.5)  # the median of the two kept, by hand
    assert abs(stats.vwap[0, 0] - 5201.67) > 1000


def test_four_ordinary_trades_beside_a_fat_finger_make_their_own_vwap():
    prices = [3300.0, 3305.0, 3310.0, 3298.0, 9000.0]
    lots = [120.0, 80.0, 100.0, 50.0, 100.0]
    stats = _assess(prices, lots, [0, 1, 0, 1, 0])
    assert stats.flags.tolist() == [USED] * 4 + [OUTLIER]
    # (3300×120 + 3305×80 + 3310×100 + 3298×50) / 350 = 1 155 700 / 350
    want = (3300 * 120 + 3305 * 80 + 3310 * 100 + 3298 * 50) / 350
    assert stats.vwap[0, 0] == pytest.approx(want, rel=1e-15)
    assert stats.shortfall[0, 0] == 0
    # Median 3305 of the five; |deviations| 5, 0, 5, 7, 5695 → MAD 5, scaled 7.413, below
    # the floor of 1% × 3305 = 33.05: the spread is 33.05, the band ±132.2.
    assert stats.center[0, 0] == 3305.0
    assert stats.scale[0, 0] == pytest.approx(33.05)


def test_near_identical_prices_exclude_nothing():
    # The MAD of 100, 100, 100, 100.01 is 0: without the floor 100.01 would be "infinitely"
    # far out; the floor (1% of 100) keeps it.
    stats = _assess([100.0, 100.0, 100.0, 100.01], [1.0] * 4, [0, 1, 0, 1])
    assert stats.flags.tolist() == [USED] * 4


def _ordinary_windows(n_windows: int, seed: int):
    """Ordinary windows: 3 to 50 trades, prices normal with a 1% relative spread about the
    level, lognormal sizes, 2 to 4 exchanges."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 51, n_windows)
    level = rng.uniform(100.0, 20_000.0, n_windows)
    time, price, quantity, exchange = [], [], [], []
    for w, n in enumerate(sizes):
        time.append(w * 1000 + 1 + np.arange(n))
        price.append(level[w] * (1 + 0.01 * rng.standard_normal(n)))
        quantity.append(rng.lognormal(3.0, 1.0, n))
        exchange.append(rng.integers(0, rng.integers(2, 5), n))
    closes = (np.arange(n_windows + 1, dtype=np.int64) * 1000)[None, :]
    columns = [np.concatenate(c) for c in (time, price, quantity, exchange)]
    return sizes, closes, columns


def test_ordinary_windows_keep_their_trades():
    sizes, closes, (time, price, quantity, exchange) = _ordinary_windows(10_000, seed=2026)
    stats = assess_windows(
        np.zeros(time.size, dtype=np.int64),
        time,
        price,
        quantity,
        exchange,
        closes,
        KernelParameters.from_rules([_rule()]),
        with_flags=True,
    )
    excluded = stats.flags == OUTLIER
    assert excluded.mean() <= 0.01
    size_of_trade = np.repeat(sizes, sizes)
    for n in range(3, 51):
        assert excluded[size_of_trade == n].mean() <= 0.02, n
    # The same windows under 2025.2's 2-sigma rule lose several per cent of their trades.
    old = assess_windows(
        np.zeros(time.size, dtype=np.int64),
        time,
        price,
        quantity,
        exchange,
        closes,
        KernelParameters.from_rules([_rule("2025.2")]),
        with_flags=True,
    )
    assert (old.flags == OUTLIER).mean() > 0.03
    worst = max(excluded[size_of_trade == n].mean() for n in range(3, 51))
    old_worst = max((old.flags == OUTLIER)[size_of_trade == n].mean() for n in range(3, 51))
    print(
        f"\n{time.size} trades in 10,000 ordinary windows excluded: 2026.1 "
        f"{excluded.mean():.3%} (at most {worst:.2%} at one window size), 2025.2 "
        f"{(old.flags == OUTLIER).mean():.2%} (at most {old_worst:.1%})"
    )


def test_affiliated_trades_do_not_qualify():
    stats = _assess(
        [100.0, 101.0, 102.0, 150.0],
        [10.0, 10.0, 10.0, 10.0],
        [0, 1, 0, 1],
        affiliated=[False, False, False, True],
        buyer=[-1] * 4,
        seller=[-1] * 4,
    )
    assert stats.flags.tolist() == [USED, USED, USED, AFFILIATED]
    assert stats.vwap[0, 0] == 101.0
    # Before 2026.1 the flag changes nothing.
    stats = _assess(
        [100.0, 101.0, 102.0, 103.0],
        [10.0] * 4,
        [0, 1, 0, 1],
        _rule("2025.2"),
        affiliated=[False, False, False, True],
    )
    assert stats.flags.tolist() == [USED] * 4


def test_one_participant_above_half_the_volume_makes_the_window_insufficient():
    # Buyer 0 on exchange 0 takes 60 of 100 lots: 0.6 > 0.5. Sellers all differ.
    stats = _assess(
        [100.0, 100.0, 100.0, 100.0],
        [30.0, 30.0, 20.0, 20.0],
        [0, 0, 1, 1],
        buyer=[0, 0, 1, 2],
        seller=[3, 4, 5, 6],
    )
    assert stats.top_participant_share[0, 0] == pytest.approx(0.6)
    assert failed_tests(int(stats.shortfall[0, 0])) == ["max_participant_share"]
    # The same codes split 50/50: at the cap, not above it.
    stats = _assess([100.0] * 4, [25.0] * 4, [0, 0, 1, 1], buyer=[0, 0, 1, 2], seller=[3, 4, 5, 6])
    assert stats.top_participant_share[0, 0] == 0.5 and stats.shortfall[0, 0] == 0
    # Without codes the test is not applied.
    stats = _assess([100.0] * 4, [30.0, 30.0, 20.0, 20.0], [0, 0, 1, 1])
    assert math.isnan(stats.top_participant_share[0, 0]) and stats.shortfall[0, 0] == 0


def test_through_the_service_the_fat_finger_day_takes_the_fallback(database_url):
    """Under 2026.1, 1 to 3 December 2026: a sufficient day at 3300, then 3300/3305/9000 in
    equal lots (the 9000 excluded, two trades left: stale at 3300), then four ordinary
    trades beside a fat finger (their VWAP)."""
    from publication.fixing import compute
    from store.bootstrap import prepare_database
    from store.db import make_engine, session_scope
    from tests.methodology_support import split_world
    from tests.test_methodology_fallbacks import CATALOGUE, _assessments, add_trades, at

    engine = make_engine(database_url)
    world = CATALOGUE.replace("base_date = 2025-03-03", "base_date = 2026-12-01")
    prepare_database(engine, *split_world(world, load_methodology("2026.1")))
    d0, d1, d2 = (dt.date(2026, 12, day) for day in (1, 2, 3))
    trades = []
    for day in (d0, d1, d2):
        for code, price in (("HRC", 3200.0), ("COTTON", 15000.0)):
            trades += [
                ("X", f"{code}-{day}-{n}", code, at(day, 10 + n), price, 200.0) for n in range(3)
            ]
    trades += [
        ("X" if n % 2 else "Y", f"R0-{n}", "REBAR", at(d0, 10 + n), 3300.0, 200.0) for n in range(3)
    ]
    trades += [
        ("X", "R1-1", "REBAR", at(d1, 10), 3300.0, 200.0),
        ("Y", "R1-2", "REBAR", at(d1, 11), 3305.0, 200.0),
        ("X", "R1-3", "REBAR", at(d1, 12), 9000.0, 200.0),
    ]
    ordinary = [(3300.0, 240.0), (3305.0, 160.0), (3310.0, 200.0), (3298.0, 100.0)]
    trades += [
        ("X" if n % 2 else "Y", f"R2-{n}", "REBAR", at(d2, 10 + n), p, q)
        for n, (p, q) in enumerate(ordinary)
    ]
    trades.append(("X", "R2-fat", "REBAR", at(d2, 14), 9000.0, 100.0))
    add_trades(engine, trades)
    with session_scope(engine) as session:
        compute(session, d0, d2, now=at(d2, 16))
    rebar = _assessments(engine, "REBAR")
    engine.dispose()
    assert (rebar[d0].price, rebar[d0].fallback) == (3300.0, "none")
    assert (rebar[d1].price, rebar[d1].fallback) == (3300.0, "stale")
    excluded = {t["trade_id"]: t["rule"] for t in rebar[d1].rationale["excluded"]}
    assert excluded["R1-3"] == "outlier_mad"
    assert "min_trades" in rebar[d1].rationale["sufficiency"]["failed"]
    want = (3300 * 240 + 3305 * 160 + 3310 * 200 + 3298 * 100) / 700
    assert rebar[d2].fallback == "none" and rebar[d2].price == pytest.approx(want, rel=1e-15)
    assert rebar[d2].rationale["methodology_version"].startswith("2026.1")
