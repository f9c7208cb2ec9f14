"""Target weights and the bounds they must respect: commodity cap, sector cap, floor.

Excess over a bound is redistributed pro rata to the target weights of the commodities not
at a bound, iteratively, until every bound holds. The fixed point has a closed form, which
is what :func:`capped_weights` computes exactly: every commodity's weight is its target
times a common factor, clipped to ``[floor, commodity_cap]``; a sector whose total would
exceed the sector cap instead has its own, smaller factor, chosen so it sums to the cap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import InfeasibleWeights

RELATIVE_TOLERANCE = 1e-12


def target_weights(
    traded_value: np.ndarray, production_value: np.ndarray, traded_share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(traded-value shares, production-value shares, their blend ``traded_share`` : rest)."""
    traded = np.asarray(traded_value, dtype=np.float64)
    production = np.asarray(production_value, dtype=np.float64)
    for name, values in (("traded_value", traded), ("production_value", production)):
        if not (np.all(np.isfinite(values)) and np.all(values >= 0)) or values.sum() <= 0:
            raise InfeasibleWeights(
                f"{name}: every value must be finite and >= 0, with a positive total",
                field=name,
            )
    traded_shares = traded / traded.sum()
    production_shares = production / production.sum()
    target = traded_share * traded_shares + (1.0 - traded_share) * production_shares
    return traded_shares, production_shares, target


def _clipped_total(targets, factor, floor, cap) -> float:
    return float(np.clip(targets * factor, floor, cap).sum())


def _factor(targets: np.ndarray, floor: float, cap: float, total: float, what: str) -> float:
    """The factor a with Σ clip(target × a, floor, cap) = total (the smallest such a).

    The sum is non-decreasing and piecewise linear in a, with breakpoints where a
    commodity reaches its floor or its cap; the equation is solved on the right piece.
    """
    n = targets.size
    lowest, highest = n * floor, float(np.where(targets > 0, cap, floor).sum())
    if total < lowest * (1 - RELATIVE_TOLERANCE) or total > highest * (1 + RELATIVE_TOLERANCE):
        raise InfeasibleWeights(
            f"{what}: {n} commodities must share {total:.6g}, but their floors add up to "
            f"{lowest:.6g} and their caps to {highest:.6g}",
            total=total,
            floor_total=lowest,
            cap_total=highest,
        )
    positive = targets > 0
    breaks = np.unique(np.concatenate(([0.0], floor / targets[positive], cap / targets[positive])))
    sums = np.array([_clipped_total(targets, b, floor, cap) for b in breaks])
    k = int(np.searchsorted(sums, total, side="left"))
    if k == 0:
        return float(breaks[0])
    if k >= breaks.size:
        return float(breaks[-1])
    lo, hi = breaks[k - 1], breaks[k]
    middle = (lo + hi) / 2
    free = positive & (targets * middle > floor) & (targets * middle < cap)
    slope = targets[free].sum()
    if slope == 0:
        return float(hi)
    pinned = _clipped_total(targets, middle, floor, cap) - slope * middle
    return float((total - pinned) / slope)


def capped_weights(
    targets: Sequence[float],
    sectors: Sequence[str],
    *,
    commodity_cap: float,
    sector_cap: float,
    floor: float,
) -> np.ndarray:
    """Final weights from target weights (summing to 1) under the three bounds.

    Raises :class:`InfeasibleWeights` naming the bound that cannot hold.
    """
    targets = np.asarray(targets, dtype=np.float64)
    sector_of = np.asarray(sectors, dtype=object)
    if targets.ndim != 1 or targets.size != sector_of.size or targets.size == 0:
        raise InfeasibleWeights("targets and sectors must be equally long and not empty")
    if not (np.all(np.isfinite(targets)) and np.all(targets >= 0)):
        raise InfeasibleWeights("every target weight must be finite and >= 0")
    if abs(targets.sum() - 1.0) > 1e-9:
        raise InfeasibleWeights(f"target weights sum to {targets.sum()!r}, not 1")
    names = sorted(set(sector_of.tolist()))
    for name in names:
        members = int((sector_of == name).sum())
        if members * floor > sector_cap * (1 + RELATIVE_TOLERANCE):
            raise InfeasibleWeights(
                f"sector {name}: {members} commodities at the floor {floor} exceed the "
                f"sector cap {sector_cap}",
                sector=name,
            )

    pinned: set[str] = set()
    while True:
        free = ~np.isin(sector_of, list(pinned))
        remaining = 1.0 - sector_cap * len(pinned)
        what = "the commodities outside capped sectors" if pinned else "all commodities"
        factor = _factor(targets[free], floor, commodity_cap, remaining, what)
        weights = np.clip(targets * factor, floor, commodity_cap)
        over = {
            name
            for name in names
            if name not in pinned
            and weights[sector_of == name].sum() > sector_cap * (1 + RELATIVE_TOLERANCE)
        }
        if not over:
            break
        pinned |= over
    for name in pinned:
        members = sector_of == name
        own = _factor(targets[members], floor, commodity_cap, sector_cap, f"sector {name}")
        weights[members] = np.clip(targets[members] * own, floor, commodity_cap)
    return weights
