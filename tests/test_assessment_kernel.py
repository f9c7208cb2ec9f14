"""The daily assessment kernel against the slow reference in tests/naive.py."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcpi.errors import InvalidInput
from index.assessment import daily_assessments
from ingest.synthetic import generate
from tests import naive

FIELDS = ("vwap", "trades", "volume", "high", "low")


def _compare(result, expected: dict) -> None:
    assert len(result.vwap) == len(expected)
    for g in range(len(result.vwap)):
        key = (int(result.commodity_id[g]), int(result.day[g].astype(np.int64)))
        ref = expected[key]
        for name in FIELDS:
            got = float(getattr(result, name)[g])
            assert got == pytest.approx(ref[name], rel=1e-12, abs=0), (key, name)


def test_kernel_matches_reference_on_generated_feeds(tmp_path):
    paths = generate(tmp_path, start=dt.date(2025, 1, 2), days=40, malformed_per_file=0)
    feed = pl.concat([pl.read_csv(p, infer_schema=False) for p in paths])
    codes = sorted(feed["commodity"].unique())
    commodity = [codes.index(c) for c in feed["commodity"]]
    instants = [dt.datetime.fromisoformat(t) for t in feed["traded_at"]]
    # Beijing calendar day, independently of the kernel's arithmetic: the local date
    # written in the feed, counted in days since 1970-01-01.
    day = [(t.date() - dt.date(1970, 1, 1)).days for t in instants]
    ms = [round(t.timestamp() * 1000) for t in instants]
    price = [float(p) for p in feed["price"]]
    quantity = [float(q) for q in feed["quantity"]]
    exchange = [
        int(t.startswith("CBEEX")) + 2 * int(t.startswith("BSTX")) for t in feed["trade_id"]
    ]

    result = daily_assessments(commodity, ms, price, quantity, exchange)

    _compare(result, naive.daily_vwap(commodity, day, price, quantity))
    assert set(result.exchanges.tolist()) <= {1, 2, 3}


prices = st.floats(min_value=1e-3, max_value=1e7, allow_nan=False, allow_infinity=False)
quantities = st.floats(min_value=1e-3, max_value=1e12, allow_nan=False, allow_infinity=False)
trade = st.tuples(
    st.integers(0, 4),  # commodity
    st.integers(0, 5 * 86_400_000),  # ms after an arbitrary instant
    prices,
    quantities,
    st.integers(0, 3),  # exchange
)


@settings(max_examples=200, deadline=None)
@given(st.lists(trade, min_size=0, max_size=60))
def test_kernel_matches_reference_on_random_trades(trades):
    origin = 1_735_689_600_000  # 2025-01-01T00:00Z
    commodity = [t[0] for t in trades]
    ms = [origin + t[1] for t in trades]
    price = [t[2] for t in trades]
    quantity = [t[3] for t in trades]
    exchange = [t[4] for t in trades]
    day = [
        (
            dt.datetime.fromtimestamp(m / 1000, dt.timezone(dt.timedelta(hours=8))).date()
            - dt.date(1970, 1, 1)
        ).days
        for m in ms
    ]
    result = daily_assessments(commodity, ms, price, quantity, exchange)
    _compare(result, naive.daily_vwap(commodity, day, price, quantity))
    for g in range(len(result.vwap)):
        members = {
            exchange[i]
            for i in range(len(trades))
            if commodity[i] == result.commodity_id[g]
            and day[i] == int(result.day[g].astype(np.int64))
        }
        assert result.exchanges[g] == len(members)


def test_results_are_identical_across_runs_and_orderings():
    rng = np.random.default_rng(7)
    n = 50_000
    commodity = rng.integers(0, 9, n)
    ms = rng.integers(0, 30 * 86_400_000, n)
    price = rng.uniform(50, 5000, n)
    quantity = rng.uniform(1, 1000, n)
    exchange = rng.integers(0, 3, n)
    first = daily_assessments(commodity, ms, price, quantity, exchange)
    shuffle = rng.permutation(n)
    second = daily_assessments(
        commodity[shuffle], ms[shuffle], price[shuffle], quantity[shuffle], exchange[shuffle]
    )
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("price", {"price": [1.0, float("nan")]}),
        ("quantity", {"quantity": [1.0, 0.0]}),
        ("price", {"price": [1.0, -2.0]}),
        ("traded_at_ms", {"traded_at_ms": [0]}),
    ],
)
def test_bad_inputs_name_the_field(field, kwargs):
    args = {
        "commodity_id": [0, 1],
        "traded_at_ms": [0, 1],
        "price": [1.0, 2.0],
        "quantity": [1.0, 1.0],
        "exchange_id": [0, 0],
    } | kwargs
    with pytest.raises(InvalidInput) as info:
        daily_assessments(**args)
    assert info.value.field == field


def test_no_trades_gives_no_assessments():
    result = daily_assessments([], [], [], [], [])
    assert result.vwap.size == 0
