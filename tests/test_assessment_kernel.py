"""The assessment kernels against the slow reference in tests/naive.py and hand computations."""

from __future__ import annotations

import datetime as dt
import math

import numba
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cli.synthetic import generate
from core.calendar import Calendar
from core.errors import InvalidInput
from core.methodology import CommodityRule, load_methodology
from index.assessment import KernelParameters, assess_windows, failed_tests
from index.kernels.assessment import AFFILIATED, BELOW_MIN_LOT, OUTLIER, OUTSIDE_WINDOWS, USED
from tests import naive

REL = 1e-12
VERDICTS = {USED: "used", BELOW_MIN_LOT: "min_lot", OUTLIER: "outlier", AFFILIATED: "affiliated"}


def _rule(**overrides) -> CommodityRule:
    values = {
        "code": "X",
        "cutoff": dt.time(15),
        "min_lot": 0.0,
        "min_volume": 0.0,
        "min_trades": 1,
        "min_exchanges": 1,
        "max_exchange_share": 1.0,
        "exclusion": "sigma",
        "k": 2.0,
        "mad_scale": 1.4826,
        "related": (),
    } | overrides
    return CommodityRule(**values)


def _as_dict(rule: CommodityRule) -> dict:
    return rule.model_dump()


def _close(got: float, want: float, rel: float = REL, abs_tol: float = 0.0) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_tol)


def _compare(stats, expected: dict, trades) -> None:
    """Kernel statistics and per-trade verdicts against the reference, window by window."""
    commodity, time = trades[0], trades[1]
    for (c, d), ref in expected.items():
        assert stats.window_trades[c, d] == ref["window_trades"], (c, d)
        assert stats.lot_trades[c, d] == ref["lot_trades"], (c, d)
        assert stats.trades[c, d] == ref["trades"], (c, d)
        assert stats.exchanges[c, d] == ref["exchanges"], (c, d)
        for name in ("volume", "vwap", "high", "low", "center", "top_share"):
            got = float(getattr(stats, name)[c, d])
            assert _close(got, ref[name]), (c, d, name, got, ref[name])
        for name in ("top_participant_share",):
            got = float(getattr(stats, name)[c, d])
            assert _close(got, ref[name]), (c, d, name, got, ref[name])
        # The spread's absolute error is bounded relative to the price level.
        level = abs(ref["center"]) if ref["lot_trades"] else 0.0
        assert _close(float(stats.scale[c, d]), ref["scale"], abs_tol=REL * level), (c, d)
        assert set(failed_tests(int(stats.shortfall[c, d]))) == ref["failed"], (c, d)
    if stats.flags is not None:
        verdicts = {}
        for (c, d), ref in expected.items():
            verdicts[(c, d)] = ref["verdicts"]
        seen = {key: [] for key in expected}
        order = sorted(range(len(commodity)), key=lambda i: tuple(t[i] for t in trades))
        for i in order:
            flag = int(stats.flags[i])
            if flag == OUTSIDE_WINDOWS:
                continue
            key = next(
                (c, d)
                for (c, d) in expected
                if c == commodity[i] and _closes[c][d] < time[i] <= _closes[c][d + 1]
            )
            seen[key].append(VERDICTS[flag])
        for key, ref in expected.items():
            assert seen[key] == ref["verdicts"], key


_closes: list[list[int]] = []


def _participant_ids(participants, exchange):
    """Dense ids per (role, exchange, code), -1 for none, as the caller of the kernel makes."""
    ids: dict = {}
    buyer, seller = [], []
    for (b, s, _), e in zip(participants, exchange, strict=True):
        buyer.append(-1 if b is None else ids.setdefault(("buyer", e, b), len(ids)))
        seller.append(-1 if s is None else ids.setdefault(("seller", e, s), len(ids)))
    return buyer, seller


def _run(trades, closes, rules, participants=None, **kwargs):
    _closes[:] = [list(row) for row in closes]
    commodity, time, price, quantity, exchange = trades
    if participants is not None:
        buyer, seller = _participant_ids(participants, exchange)
        kwargs |= {"buyer": buyer, "seller": seller, "affiliated": [a for *_, a in participants]}
    stats = assess_windows(
        commodity,
        time,
        price,
        quantity,
        exchange,
        np.array(closes, dtype=np.int64),
        KernelParameters.from_rules(rules),
        with_flags=True,
        **kwargs,
    )
    expected = naive.assess_all(
        commodity,
        time,
        price,
        quantity,
        exchange,
        closes,
        [_as_dict(r) for r in rules],
        participants,
    )
    return stats, expected


def _unambiguous(expected: dict, rules) -> bool:
    """No lot-passing trade sits within rounding of the k-sigma boundary."""
    for (c, _), ref in expected.items():
        if rules[c].exclusion != "sigma" or not ref["lot_trades"] or not ref["scale"] > 0:
            continue
        limit = rules[c].k * ref["scale"]
        for p in ref.get("_prices", []):
            if abs(abs(p - ref["center"]) - limit) <= 1e-9 * abs(ref["center"]):
                return False
    return True


prices = st.floats(min_value=1e-3, max_value=1e7, allow_nan=False, allow_infinity=False)
quantities = st.floats(min_value=1e-3, max_value=1e12, allow_nan=False, allow_infinity=False)
CLOSES = [[0, 1000, 2000, 3000, 4000]] * 3  # four windows per commodity
trade = st.tuples(
    st.integers(0, 2),
    st.integers(-200, 4200),  # some before the first window and after the last
    st.one_of(prices, st.sampled_from([100.0, 101.0, 99.5])),  # ties make MAD cases
    st.one_of(quantities, st.sampled_from([1.0, 4.0, 10.0])),
    st.integers(0, 3),
)
rule = st.builds(
    _rule,
    min_lot=st.sampled_from([0.0, 1.0, 5.0, 1e6]),
    min_volume=st.sampled_from([0.0, 10.0, 1e9]),
    min_trades=st.integers(1, 4),
    min_exchanges=st.integers(1, 3),
    max_exchange_share=st.sampled_from([1.0, 0.8, 0.5]),
    exclusion=st.sampled_from(["sigma", "mad"]),
    k=st.sampled_from([1.0, 2.0, 3.0, 4.0]),
    scale_floor=st.sampled_from([0.0, 0.0, 0.01, 0.2]),
    exclude_affiliated=st.booleans(),
    max_participant_share=st.sampled_from([1.0, 0.5, 0.3]),
)
participant = st.tuples(
    st.one_of(st.none(), st.sampled_from(["A", "B", "C"])),
    st.one_of(st.none(), st.sampled_from(["A", "B", "D"])),
    st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    st.lists(st.tuples(trade, participant), max_size=60),
    st.lists(rule, min_size=3, max_size=3),
    st.booleans(),
)
def test_kernel_matches_reference_on_random_trades(pairs, rules, with_participants):
    rows = [row for row, _ in pairs]
    trades = tuple(list(column) for column in zip(*rows, strict=True)) if rows else ([],) * 5
    participants = [who for _, who in pairs] if with_participants else None
    stats, expected = _run(trades, CLOSES, rules, participants)
    for (c, d), ref in expected.items():
        lo, hi = CLOSES[c][d], CLOSES[c][d + 1]
        ref["_prices"] = [
            p for cc, t, p, q, _ in rows if cc == c and lo < t <= hi and q >= rules[c].min_lot
        ]
        if ref["lot_trades"] and ref["scale"] > 0:  # a spread at the floor's boundary
            floor = rules[c].scale_floor * abs(ref["center"])
            assume(abs(ref["scale"] - floor) > 1e-9 * max(abs(ref["center"]), 1e-300))
    assume(_unambiguous(expected, rules))
    _compare(stats, expected, trades)


def test_edge_cases_empty_windows_single_trade_all_excluded_huge_volumes():
    rules = [_rule(min_lot=10.0), _rule(min_lot=10.0), _rule(exclusion="mad")]
    trades = (
        [0, 1, 1, 2, 2],
        [500, 1500, 1600, 2500, 2600],
        [100.0, 50.0, 60.0, 1e7, 1e7 * (1 + 1e-15)],
        [10.0, 9.0, 9.999, 1e12, 1e12],
        [0, 1, 1, 2, 3],
    )
    stats, expected = _run(trades, CLOSES, rules)
    _compare(stats, expected, trades)
    assert stats.trades[0].tolist() == [1, 0, 0, 0]  # a single trade; then empty windows
    assert stats.vwap[0, 0] == 100.0 and stats.high[0, 0] == stats.low[0, 0] == 100.0
    assert math.isnan(stats.vwap[0, 1])
    assert stats.window_trades[1, 1] == 2 and stats.trades[1, 1] == 0  # all below the lot
    assert failed_tests(int(stats.shortfall[1, 1])) == ["min_trades", "min_volume", "min_exchanges"]
    assert stats.volume[2, 2] == 2e12


def test_hand_computed_two_sigma_boundary_and_cutoff():
    # Prices 100 (1 lot) and 110 (4 lots): mean 108, variance (64 + 4 × 4) / 5 = 16, SD 4.
    # 100 lies exactly 2 SD below the mean: "more than k SD" keeps it. A third trade at 95
    # (1 lot) moves the mean to 106.25 and the SD to sqrt(... ) so that 95 lies > 2 SD out.
    rules = [_rule()]
    stats, _ = _run(([0, 0], [10, 1000], [100.0, 110.0], [1.0, 4.0], [0, 1]), [[0, 1000]], rules)
    assert (stats.center[0, 0], stats.scale[0, 0]) == (108.0, 4.0)
    assert stats.trades[0, 0] == 2 and stats.vwap[0, 0] == 108.0
    # Six trades at 100 and one at 130, one lot each: mean 104.2857…, SD 10.497…;
    # 130 deviates by 25.71 > 2 × 10.497, so it is excluded and the VWAP is 100.
    six = ([0] * 7, list(range(1, 8)), [100.0] * 6 + [130.0], [1.0] * 7, [0] * 7)
    stats, _ = _run(six, [[0, 1000]], rules)
    assert stats.trades[0, 0] == 6 and stats.vwap[0, 0] == 100.0
    assert stats.flags.tolist() == [USED] * 6 + [OUTLIER]
    # A trade at the cut-off instant counts for that day; one millisecond later, the next.
    stats, _ = _run(
        ([0, 0], [1000, 1001], [1.0, 2.0], [1.0, 1.0], [0, 0]), [[0, 1000, 2000]], rules
    )
    assert stats.vwap[0].tolist() == [1.0, 2.0]


def test_mad_exclusion_by_hand():
    # Prices 10, 11, 12, 13, 40: median 12, |deviations| 2, 1, 0, 1, 28 → MAD 1, scaled
    # 1.4826; with k = 3 the limit is 4.4478: only 40 is excluded.
    rules = [_rule(exclusion="mad", k=3.0)]
    trades = ([0] * 5, [1, 2, 3, 4, 5], [10.0, 11.0, 12.0, 13.0, 40.0], [1.0] * 5, [0] * 5)
    stats, _ = _run(trades, [[0, 1000]], rules)
    assert (stats.center[0, 0], stats.scale[0, 0]) == (12.0, 1.4826)
    assert stats.flags.tolist() == [USED] * 4 + [OUTLIER]
    assert stats.vwap[0, 0] == 11.5


def test_sufficiency_tests_by_hand():
    rules = [_rule(min_trades=2, min_volume=10.0, min_exchanges=2, max_exchange_share=0.75)]
    # Exchange 0 has 8 of 10 lots: share 0.8 > 0.75.
    trades = ([0, 0, 0], [1, 2, 3], [5.0, 5.0, 5.0], [4.0, 4.0, 2.0], [0, 0, 1])
    stats, _ = _run(trades, [[0, 1000]], rules)
    assert stats.top_share[0, 0] == 0.8
    assert failed_tests(int(stats.shortfall[0, 0])) == ["max_exchange_share"]
    stats, _ = _run(([0], [1], [5.0], [4.0], [0]), [[0, 1000]], rules)
    assert set(failed_tests(int(stats.shortfall[0, 0]))) == {
        "min_trades",
        "min_volume",
        "min_exchanges",
        "max_exchange_share",
    }


def _random_trades(n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    commodity = rng.integers(0, 9, n)
    time = rng.integers(0, 30 * 86_400_000, n)
    price = rng.lognormal(5, 0.05, n) * (1 + commodity)
    quantity = rng.integers(1, 100, n) * 10.0
    exchange = rng.integers(0, 3, n)
    closes = np.tile(np.arange(-1, 30, dtype=np.int64) * 86_400_000 + 25_200_000, (9, 1))
    rules = [_rule(min_lot=50.0, exclusion="mad" if c % 3 == 0 else "sigma") for c in range(9)]
    return (commodity, time, price, quantity, exchange), closes, KernelParameters.from_rules(rules)


def _all_fields(stats):
    return [getattr(stats, name) for name in stats.__dataclass_fields__]


def test_bit_identical_across_thread_counts_runs_and_arrival_orders():
    trades, closes, parameters = _random_trades(200_000)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = assess_windows(*trades, closes, parameters, with_flags=True)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = assess_windows(*trades, closes, parameters, with_flags=True)
        shuffle = np.random.default_rng(1).permutation(len(trades[0]))
        shuffled = assess_windows(*(t[shuffle] for t in trades), closes, parameters)
    finally:
        numba.set_num_threads(threads)
    for a, b in zip(_all_fields(single), _all_fields(many), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_all_fields(single)[:-1], _all_fields(shuffled)[:-1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert (single.trades > 0).sum() > 200  # the test covered real windows


def test_presorted_input_is_checked_and_gives_the_same_result():
    trades, closes, parameters = _random_trades(20_000)
    order = np.lexsort(tuple(reversed(trades)))  # commodity, time, price, quantity, exchange
    ordered = tuple(t[order] for t in trades)
    presorted = assess_windows(*ordered, closes, parameters, presorted=True)
    sorted_here = assess_windows(*trades, closes, parameters)
    for a, b in zip(_all_fields(presorted), _all_fields(sorted_here), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidInput) as info:
        assess_windows(*trades, closes, parameters, presorted=True)
    assert info.value.field == "traded_at_ms"


def test_trusted_input_gives_the_same_numbers_without_the_checks():
    trades, closes, parameters = _random_trades(20_000)
    order = np.lexsort(tuple(reversed(trades)))
    ordered = tuple(t[order] for t in trades)
    checked = assess_windows(*ordered, closes, parameters, presorted=True, with_flags=True)
    trusted = assess_windows(
        *ordered, closes, parameters, presorted=True, trusted=True, with_flags=True
    )
    for a, b in zip(_all_fields(checked), _all_fields(trusted), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidInput) as info:
        assess_windows(*trades, closes, parameters, trusted=True)
    assert info.value.field == "trusted"


@pytest.mark.parametrize("version", ["2025.2", "2026.1"])
def test_kernel_matches_reference_on_generated_feeds(tmp_path, version):
    methodology = load_methodology(version)
    paths = generate(tmp_path, start=dt.date(2025, 1, 2), days=8, malformed_per_file=0)
    feed = pl.concat([pl.read_csv(p, infer_schema=False) for p in paths])
    codes = sorted(feed["commodity"].unique())
    rules = [methodology.assessment.rule(code) for code in codes]
    calendar = Calendar(methodology)
    # 2 to 13 January 2025: eight weekdays, none a mainland holiday (the synthetic feed
    # trades on weekdays); the window of 2 January opens at the cut-off of 31 December,
    # as 1 January is a holiday.
    days = calendar.publication_days(dt.date(2025, 1, 2), dt.date(2025, 1, 13))
    assert len(days) == 8
    previous = calendar.previous_publication_day(days[0])
    assert previous == dt.date(2024, 12, 31)
    closes = [
        [round(calendar.cutoff(day, r.code).timestamp() * 1000) for day in [previous, *days]]
        for r in rules
    ]
    time = [round(dt.datetime.fromisoformat(t).timestamp() * 1000) for t in feed["traded_at"]]
    trades = (
        [codes.index(c) for c in feed["commodity"]],
        time,
        [float(p) for p in feed["price"]],
        [float(q) for q in feed["quantity"]],
        [int(t.startswith("CBEEX")) + 2 * int(t.startswith("BSTX")) for t in feed["trade_id"]],
    )
    stats, expected = _run(trades, closes, rules)
    _compare(stats, expected, trades)
    assert stats.trades.sum() > 0.8 * len(time)  # the rules keep most synthetic trades
    assert (stats.flags == BELOW_MIN_LOT).any()
    if methodology.assessment.exclusion == "sigma":  # 2 SD excludes some ordinary trades
        assert (stats.flags == OUTLIER).any()


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("price", {"price": [1.0, float("nan")]}),
        ("quantity", {"quantity": [1.0, 0.0]}),
        ("price", {"price": [1.0, -2.0]}),
        ("traded_at_ms", {"traded_at_ms": [0]}),
        ("commodity_id", {"commodity_id": [0, 5]}),
        ("exchange_id", {"exchange_id": [0, -1]}),
        ("closes", {"closes": np.array([[10, 5]])}),
        ("parameters", {"parameters": KernelParameters.from_rules([_rule(), _rule()])}),
    ],
)
def test_bad_inputs_name_the_field(field, change):
    args = {
        "commodity": [0, 0],
        "traded_at_ms": [1, 2],
        "price": [1.0, 2.0],
        "quantity": [1.0, 1.0],
        "exchange": [0, 0],
        "closes": np.array([[0, 10]]),
        "parameters": KernelParameters.from_rules([_rule()]),
    }
    renamed = {"commodity_id": "commodity", "exchange_id": "exchange"}
    for key, value in change.items():
        args[renamed.get(key, key)] = value
    with pytest.raises(InvalidInput) as info:
        assess_windows(**args)
    assert info.value.field == field


def test_no_trades_gives_empty_windows():
    stats = assess_windows(
        [], [], [], [], [], np.array([[0, 10, 20]]), KernelParameters.from_rules([_rule()])
    )
    assert stats.trades.tolist() == [[0, 0]]
    assert np.isnan(stats.vwap).all()
