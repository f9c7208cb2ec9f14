"""Chain-linking with weight periods and the capped weights, against slow references and
hand computations."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InfeasibleWeights
from index.chain import chain_link
from index.weights import capped_weights, target_weights
from tests import naive

REL = 1e-12
BASE = dt.date(2024, 12, 30)


def _days(n: int, gaps: list[int]) -> list[dt.date]:
    days, day = [BASE], BASE
    for k in range(n - 1):
        day += dt.timedelta(days=1 + gaps[k % len(gaps)])
        days.append(day)
    return days


@st.composite
def chained_inputs(draw):
    n_items = draw(st.integers(1, 4))
    n_days = draw(st.integers(1, 40))
    days = _days(n_days, draw(st.lists(st.integers(0, 40), min_size=1, max_size=5)))
    level = st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False)
    levels = [[draw(level) for _ in range(n_items)] for _ in days]
    for t in range(1, n_days):  # gaps after the base day carry the last level
        for i in range(n_items):
            if draw(st.booleans()) and draw(st.booleans()):
                levels[t][i] = math.nan

    def weights():
        raw = [draw(st.floats(0.01, 1.0)) for _ in range(n_items)]
        return np.array(raw) / math.fsum(raw)

    changes = [
        (days[0] + dt.timedelta(days=draw(st.integers(1, 900))), weights())
        for _ in range(draw(st.integers(0, 3)))
    ]
    return days, levels, weights(), dict(changes)


@settings(max_examples=300, deadline=None)
@given(chained_inputs())
def test_chain_link_matches_reference(case):
    assert_matches_reference(*case)


def assert_matches_reference(days, levels, base_weights, changes) -> None:
    """The kernel's values equal the slow reference's on every day (a member weighted 0
    takes no part: the reference is given only the weighted ones)."""
    result = chain_link(
        np.array(days, dtype="datetime64[D]"),
        np.array(levels),
        base_weights,
        BASE,
        1000.0,
        weight_changes=list(changes.items()),
    )
    by_day = {
        day: {i: v for i, v in enumerate(row) if not math.isnan(v)}
        for day, row in zip(days, levels, strict=True)
    }
    sets = {BASE: {i: w for i, w in enumerate(base_weights) if w > 0}} | {
        d: dict(enumerate(w)) for d, w in changes.items()
    }
    expected = naive.chain_linked_index(days, by_day, sets, BASE, 1000.0)
    for t, day in enumerate(days):
        assert math.isclose(result.values[t], expected[day], rel_tol=REL), (day, t)
        # The rationale form: the period's constant × Σ w · level / reference level.
        p = result.period_of_row[t]
        r = result.reference_rows[t]
        weighted = result.weights[p] > 0
        again = result.constants[p] * math.fsum(
            result.weights[p][weighted] * result.levels[t][weighted] / result.levels[r][weighted]
        )
        assert math.isclose(again, result.values[t], rel_tol=REL)


def test_no_level_jump_when_weights_change_and_levels_do_not():
    # Two constituents move apart in December; their levels stay put over the change on
    # 5 January 2026, when the weights go from 0.5/0.5 to 0.9/0.1. (5 and 6 January are the
    # first publication days of 2026: 1 and 2 January are mainland public holidays.)
    days = np.array(["2025-12-01", "2025-12-15", "2026-01-05", "2026-01-06"], dtype="datetime64[D]")
    levels = np.array([[1000.0, 1000.0], [1200.0, 900.0], [1200.0, 900.0], [1320.0, 900.0]])
    result = chain_link(
        days,
        levels,
        np.array([0.5, 0.5]),
        days[0],
        1000.0,
        weight_changes=[(dt.date(2026, 1, 5), np.array([0.9, 0.1]))],
    )
    # By hand: 15 Dec = 1000 × (0.5 × 1.2 + 0.5 × 0.9) = 1050, the constant from 5 Jan;
    # 5 Jan = 1050 × (0.9 × 1 + 0.1 × 1) = 1050, no jump; 6 Jan = 1050 × (0.9 × 1.1 + 0.1)
    # = 1144.5. Without the constant, 5 Jan would read 1000 × (0.9 × 1.2 + 0.1 × 0.9) = 1170.
    np.testing.assert_allclose(result.values, [1000.0, 1050.0, 1050.0, 1144.5], rtol=REL)
    assert result.constants.tolist()[-1] == pytest.approx(1050.0, rel=REL)
    # Periods begin on 1 January (the annual link) and on 5 January (the new weights);
    # both chain from 15 December.
    assert result.period_starts[-2:] == [dt.date(2026, 1, 1), dt.date(2026, 1, 5)]
    assert result.period_reference[-2:].tolist() == [1, 1]
    assert result.weights_from[-1] == dt.date(2026, 1, 5)


# Hand computation (also in METHODOLOGY.md): six commodities in three sectors, commodity
# cap 0.30, sector cap 0.45, floor 0.04, targets 0.35 0.15 | 0.20 0.15 | 0.14 0.01.
# 1. One factor for all: A is capped (0.30) and F floored (0.04); B..E share 0.66 pro rata
#    to 0.64 of target, factor 0.66/0.64: sector X = 0.30 + 0.15 × 1.03125 = 0.4547 > 0.45.
# 2. X is held at 0.45; C, D, E share 1 - 0.45 - 0.04 = 0.51 pro rata to 0.49: factor
#    51/49; no other bound binds (Y = 0.35 × 51/49 = 0.3643, Z = 0.1857).
# 3. Inside X, 0.45 with A at its cap leaves B its own target, 0.15.
HAND_TARGETS = [0.35, 0.15, 0.20, 0.15, 0.14, 0.01]
HAND_SECTORS = ["X", "X", "Y", "Y", "Z", "Z"]
HAND_WEIGHTS = [0.30, 0.15, 0.20 * 51 / 49, 0.15 * 51 / 49, 0.14 * 51 / 49, 0.04]
HAND_BOUNDS = {"commodity_cap": 0.30, "sector_cap": 0.45, "floor": 0.04}


def test_capped_weights_by_hand():
    weights = capped_weights(HAND_TARGETS, HAND_SECTORS, **HAND_BOUNDS)
    np.testing.assert_allclose(weights, HAND_WEIGHTS, rtol=REL)
    assert math.fsum(weights) == pytest.approx(1.0, rel=REL)


def test_targets_blend_two_thirds_traded_value_one_third_production():
    traded, production, target = target_weights(
        np.array([425.0, 125.0, 200.0, 140.0, 105.0, 5.0]),
        np.array([20.0, 20.0, 20.0, 17.0, 21.0, 2.0]),
        2 / 3,
    )
    assert traded[0] == pytest.approx(0.425, rel=REL) and production[0] == 0.20
    np.testing.assert_allclose(target, HAND_TARGETS, rtol=1e-12)


@st.composite
def bounded_targets(draw):
    n = draw(st.integers(1, 12))
    raw = np.array([draw(st.floats(0.0, 1.0)) for _ in range(n)]) + 1e-6
    sectors = [draw(st.sampled_from("ABCD")) for _ in range(n)]
    cap = draw(st.floats(1.0 / n, 1.0))
    floor = draw(st.floats(0.0, 1.0 / n))
    sector_cap = draw(st.floats(0.05, 1.0))
    return list(raw / raw.sum()), sectors, cap, sector_cap, floor


@settings(max_examples=300, deadline=None)
@given(bounded_targets())
def test_capped_weights_match_reference_or_refuse_clearly(case):
    targets, sectors, cap, sector_cap, floor = case
    names = set(sectors)
    feasible = len(targets) * floor <= 1 and all(
        sectors.count(s) * floor <= sector_cap for s in names
    )
    feasible = feasible and math.fsum(
        min(sector_cap, sectors.count(s) * cap) for s in names
    ) >= 1 * (1 - 1e-12)
    if not feasible:
        with pytest.raises(InfeasibleWeights):
            capped_weights(targets, sectors, commodity_cap=cap, sector_cap=sector_cap, floor=floor)
        return
    weights = capped_weights(
        targets, sectors, commodity_cap=cap, sector_cap=sector_cap, floor=floor
    )
    expected = naive.capped_weights(targets, sectors, cap, sector_cap, floor)
    np.testing.assert_allclose(weights, expected, rtol=1e-9, atol=1e-12)
    assert math.fsum(weights) == pytest.approx(1.0, abs=1e-9)
    assert np.all(weights <= cap * (1 + 1e-9)) and np.all(weights >= floor * (1 - 1e-9))
    for name in names:
        assert weights[[s == name for s in sectors]].sum() <= sector_cap * (1 + 1e-9)


def test_infeasible_bounds_are_a_clear_error():
    with pytest.raises(InfeasibleWeights, match=r"caps to 0\.9"):
        capped_weights([0.5, 0.3, 0.2], ["A", "B", "C"], commodity_cap=0.3, sector_cap=1.0, floor=0)
    with pytest.raises(InfeasibleWeights, match="sector A"):
        capped_weights(
            [0.5, 0.3, 0.2], ["A", "A", "B"], commodity_cap=1.0, sector_cap=0.1, floor=0.06
        )


@st.composite
def joining_inputs(draw):
    """A member weighted 0 (and without a level) until it joins with a later weight set,
    having a level from the link day, the last day before the join."""
    days, levels, base_weights, _ = draw(chained_inputs())
    n_items = len(base_weights)
    if n_items < 2 or len(days) < 3:
        return None
    join = draw(st.integers(2, len(days) - 1))
    joiner = n_items - 1
    for t in range(join - 1):
        levels[t][joiner] = math.nan
    levels[join - 1][joiner] = draw(st.floats(1e-3, 1e6))
    base = np.array(base_weights, dtype=float)
    base[joiner] = 0.0
    base /= base.sum()
    raw = np.array([draw(st.floats(0.01, 1.0)) for _ in range(n_items)])
    return days, levels, base, {days[join]: raw / raw.sum()}


@settings(max_examples=200, deadline=None)
@given(joining_inputs())
def test_a_member_that_joins_later_matches_reference(case):
    if case is None:
        return
    assert_matches_reference(*case)
