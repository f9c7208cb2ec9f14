"""How multilateral indices extend past their first window, over several periods.

With one period beyond the first window (as in the published oracle) a splice onto the
published series gives the same value as its counterpart onto the previous window; from
the second period on they differ. Expected values come from a hand computation and from
the slow references in tests/naive.py.
"""

from __future__ import annotations

import functools
import math

import polars as pl
import pytest

from index import formulas
from tests import naive, oracles

PUBLISHED_COUNTERPARTS = {"window": "wisp", "half": "hasp", "mean": "mean_published"}
METHODS = {
    "geks": functools.partial(naive.geks_window, "tornqvist"),
    "gk": naive.geary_khamis_window,
    "wtpd": naive.wtpd_window,
}


def _compute(data: pl.DataFrame, method: str, window: int, splice: str) -> dict:
    if method == "geks":
        return dict(formulas.geks(data, "tornqvist", window, splice).iter_rows())
    return dict(getattr(formulas, method)(data, window, splice).iter_rows())


def _dicts(data: pl.DataFrame) -> tuple[dict, dict]:
    prices, quantities = {}, {}
    for period, item, price, quantity in data.iter_rows():
        prices.setdefault(period, {})[item] = price
        quantities.setdefault(period, {})[item] = quantity
    return prices, quantities


CES = oracles.prices("indexnumr")
"""IndexNumR's CES_sigma_2: 4 items over 12 periods (tests/data/oracles/)."""


def test_window_and_wisp_splices_by_hand() -> None:
    # Item A costs 1 throughout; item B costs 2^b: b = 0, 6, (absent), 6, 12, 12. A Jevons
    # comparison in log2 is then (b_t - b_s) / 2 when B is priced in both periods, else 0,
    # and GEKS over a window of 3 starting at s gives log2 P(t) = sum_k [J(s,k) + J(k,t)] / 3:
    #   window 0-2: J(0,1) = 3, J(0,2) = J(1,2) = 0         -> levels 0, 2, 1
    #   window 1-3: every J is 0                            -> levels 0, 0, 0
    #   window 2-4: J(2,3) = J(2,4) = 0, J(3,4) = 3         -> levels 0, -1, 1
    #   window 3-5: J(3,4) = J(3,5) = 3, J(4,5) = 0         -> levels 0, 3, 3
    # Window splice, onto the previous window at the new window's first period k:
    #   value(T) = value(T-1) + [new(T) - new(k)] - [old(T-1) - old(k)]
    #   T=3: 1 + (0 - 0) - (1 - 2) = 2;  T=4: 2 + (1 - 0) - (0 - 0) = 3;
    #   T=5: 3 + (3 - 0) - (1 - (-1)) = 4
    # WISP, onto the published value at k: value(T) = value(k) + new(T) - new(k)
    #   T=3: 2 + 0 = 2;  T=4: 1 + 1 = 2;  T=5: 2 + 3 = 5
    b = [0, 6, None, 6, 12, 12]
    rows = [(t, "A", 1.0, 1.0) for t in range(6)]
    rows += [(t, "B", 2.0**e, 1.0) for t, e in enumerate(b) if e is not None]
    data = pl.DataFrame(rows, schema=["period", "item", "price", "quantity"], orient="row")
    expected = {"window": [0, 2, 1, 2, 3, 4], "wisp": [0, 2, 1, 2, 2, 5]}
    for splice, exponents in expected.items():
        values = formulas.geks(data, "jevons", 3, splice)["value"].to_list()
        assert values == pytest.approx([2.0**e for e in exponents], rel=1e-14), splice


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("splice", formulas.SPLICES)
@pytest.mark.parametrize("window", [3, 5, 8])
def test_every_splice_matches_the_slow_reference_over_a_long_extension(
    method: str, splice: str, window: int
) -> None:
    prices, quantities = _dicts(CES)
    levels = functools.cache(functools.partial(METHODS[method], prices, quantities))
    expected = naive.extended_index(levels, sorted(prices), window, splice)
    assert _compute(CES, method, window, splice) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("revised", PUBLISHED_COUNTERPARTS)
def test_splices_onto_the_published_series_differ_from_the_second_extension_on(
    method: str, revised: str
) -> None:
    window = 5
    periods = sorted(CES["period"].unique())
    onto_window = _compute(CES, method, window, revised)
    onto_published = _compute(CES, method, window, PUBLISHED_COUNTERPARTS[revised])
    first_extension = periods[window]
    for period in periods[: window + 1]:
        assert onto_published[period] == pytest.approx(onto_window[period], rel=1e-12)
    differ = [
        period
        for period in periods[window + 1 :]
        if not math.isclose(onto_published[period], onto_window[period], rel_tol=1e-9)
    ]
    assert differ, f"{revised} and its published counterpart agree after {first_extension}"


@pytest.mark.parametrize("method", METHODS)
def test_fixed_base_splices_keep_each_base_as_published(method: str) -> None:
    # Bases every window - 1 = 3 periods from the first: periods 1, 4, 7, 10.
    prices, quantities = _dicts(CES)
    levels = functools.cache(functools.partial(METHODS[method], prices, quantities))
    for splice in ("fbew", "fbmw"):
        values = _compute(CES, method, 4, splice)
        expected = naive.extended_index(levels, sorted(prices), 4, splice)
        assert values == pytest.approx(expected, rel=1e-12)
        # Period 5 is base 4's value times the movement from 4 to 5 in the window ending at 5.
        first = 4 if splice == "fbew" else 2
        span = levels(tuple(range(first, 6)))
        assert values[5] == pytest.approx(values[4] * span[5] / span[4], rel=1e-12)
