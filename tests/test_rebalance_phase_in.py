"""A commodity new to the weights phases in over N rebalances (METHODOLOGY.md §6.2): k/N of
its computed weight at its k-th rebalance, the others scaled to fill the rest under the
caps, the floor kept.

The hand-computed case is the worked example of §6.2 (six commodities, cap 30%, sector cap
45%, floor 4%), whose computed weights are A 0.30, B 0.15, C 0.20·51/49, D 0.15·51/49,
E 0.14·51/49, F 0.04. C is new, at the first of two rebalances: it gets half its computed
weight, 0.10·51/49 = 5.1/49. The others must hold 1 − 5.1/49 = 43.9/49:

1. One factor for A, B, D, E, F: A stays at its cap 0.30, and B, D, E, F share
   43.9/49 − 0.30 pro rata to their computed weights (factor ≈ 1.2116), which puts sector X
   at 0.30 + 0.1817 > 0.45.
2. X is held at 0.45 (A 0.30, B 0.15). D, E, F share 43.9/49 − 0.45 = 21.85/49 pro rata to
   their computed weights 7.65/49, 7.14/49, 1.96/49 (sum 16.75/49): factor 21.85/16.75.
   Sector Y holds C + D = 5.1/49 + 7.65/49 × 21.85/16.75 ≈ 0.3077 and Z ≈ 0.2423, within
   the cap; no commodity reaches 0.30.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from index.weights import capped_weights, phased_weights
from tests.test_methodology_indices import HAND_BOUNDS, HAND_SECTORS, HAND_TARGETS

REL = 1e-12
COMPUTED = [0.30, 0.15, 0.20 * 51 / 49, 0.15 * 51 / 49, 0.14 * 51 / 49, 0.04]
FACTOR = 21.85 / 16.75
PHASED = [0.30, 0.15, 5.1 / 49, 7.65 / 49 * FACTOR, 7.14 / 49 * FACTOR, 1.96 / 49 * FACTOR]


def test_the_worked_example_is_the_computed_weights():
    np.testing.assert_allclose(
        capped_weights(HAND_TARGETS, HAND_SECTORS, **HAND_BOUNDS), COMPUTED, rtol=REL
    )


def test_a_new_commodity_gets_half_its_weight_at_the_first_of_two_rebalances():
    weights = phased_weights(COMPUTED, HAND_SECTORS, [0, 0, 1, 0, 0, 0], 2, **HAND_BOUNDS)
    np.testing.assert_allclose(weights, PHASED, rtol=REL)
    assert math.fsum(weights) == pytest.approx(1.0, rel=REL)
    assert weights[2] == pytest.approx(COMPUTED[2] / 2, rel=REL)
    by_sector = {
        s: sum(w for w, t in zip(weights, HAND_SECTORS, strict=True) if t == s) for s in "XYZ"
    }
    assert by_sector["X"] == pytest.approx(0.45, rel=REL)
    assert by_sector["Y"] == pytest.approx(5.1 / 49 + 7.65 / 49 * FACTOR, rel=REL)


def test_at_its_last_rebalance_and_after_a_commodity_has_its_computed_weight():
    for step in (0, 2, 3):
        weights = phased_weights(COMPUTED, HAND_SECTORS, [0, 0, step, 0, 0, 0], 2, **HAND_BOUNDS)
        assert weights.tolist() == COMPUTED
    assert phased_weights(
        COMPUTED, HAND_SECTORS, [0, 0, 1, 0, 0, 0], 0, **HAND_BOUNDS
    ).tolist() == (COMPUTED)


def test_three_rebalances_give_a_third_then_two_thirds():
    # Three commodities in three sectors, no binding bound: the others scale pro rata.
    computed, sectors = [0.5, 0.3, 0.2], ["X", "Y", "Z"]
    bounds = {"commodity_cap": 1.0, "sector_cap": 1.0, "floor": 0.0}
    first = phased_weights(computed, sectors, [0, 0, 1], 3, **bounds)
    # C: 0.2/3; A and B share 1 − 0.2/3 = 2.8/3 pro rata to 0.5 : 0.3.
    np.testing.assert_allclose(first, [0.5 * 3.5 / 3, 0.3 * 3.5 / 3, 0.2 / 3], rtol=REL)
    second = phased_weights(computed, sectors, [0, 0, 2], 3, **bounds)
    # C: 0.4/3; A and B share 2.6/3 pro rata: factor 3.25/3.
    np.testing.assert_allclose(second, [0.5 * 3.25 / 3, 0.3 * 3.25 / 3, 0.4 / 3], rtol=REL)


def test_the_floor_holds_for_a_new_commodity():
    # D's half would be 0.03, under the floor 0.04: it gets the floor; A, B, C share 0.96
    # pro rata to 0.4 : 0.3 : 0.24 (factor 0.96 / 0.94).
    computed, sectors = [0.4, 0.3, 0.24, 0.06], ["X", "Y", "Z", "W"]
    bounds = {"commodity_cap": 1.0, "sector_cap": 1.0, "floor": 0.04}
    weights = phased_weights(computed, sectors, [0, 0, 0, 1], 2, **bounds)
    np.testing.assert_allclose(
        weights, [0.4 * 0.96 / 0.94, 0.3 * 0.96 / 0.94, 0.24 * 0.96 / 0.94, 0.04], rtol=REL
    )


def test_a_new_commodity_keeps_what_the_others_cannot_hold_under_their_caps():
    # A's cap is 0.6: with B at half (0.25) A would need 0.75. A holds 0.6 and B keeps the
    # rest, 0.4: θ = 0.6 of the 0.25 the phase-in withheld.
    bounds = {"commodity_cap": 0.6, "sector_cap": 1.0, "floor": 0.0}
    weights = phased_weights([0.5, 0.5], ["X", "Y"], [0, 1], 2, **bounds)
    np.testing.assert_allclose(weights, [0.6, 0.4], rtol=REL)
    # Sector caps count too: A and C fill sector X's cap 0.5 already, and B is alone in Y:
    # nobody can take what its phase-in would withhold, so B keeps its computed 0.5.
    bounds = {"commodity_cap": 0.5, "sector_cap": 0.5, "floor": 0.0}
    weights = phased_weights([0.25, 0.5, 0.25], ["X", "Y", "X"], [0, 1, 0], 2, **bounds)
    np.testing.assert_allclose(weights, [0.25, 0.5, 0.25], rtol=REL)


def test_when_every_commodity_is_new_nothing_is_phased():
    computed = [0.5, 0.3, 0.2]
    weights = phased_weights(
        computed, ["X", "Y", "Z"], [1, 1, 1], 2, commodity_cap=1.0, sector_cap=1.0, floor=0.0
    )
    assert weights.tolist() == computed
