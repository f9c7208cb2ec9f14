"""Target weights and the bounds they must respect: commodity cap, sector cap, floor.

Excess over a bound is redistributed pro rata to the target weights of the commodities not
at a bound, iteratively, until every bound holds. The fixed point has a closed form, which
is what :func:`capped_weights` computes exactly: every commodity's weight is its target
times a common factor, clipped to ``[floor, commodity_cap]``; a sector whose total would
exceed the sector cap instead has its own, smaller factor, chosen so it sums to the cap.

:func:`phased_weights` then phases in commodities new to the weights: each gets a fraction
of its weight, and the others share the rest by the same rule.
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


def _shared(
    targets: np.ndarray,
    sector_of: np.ndarray,
    total: float,
    rooms: dict[str, float],
    *,
    commodity_cap: float,
    floor: float,
) -> np.ndarray:
    """``total`` shared as :func:`capped_weights` shares 1: each weight its target times a
    common factor, clipped to ``[floor, commodity_cap]``; a sector over its room (its own
    cap, here one per sector) scaled by its own factor to fill it."""
    names = sorted(set(sector_of.tolist()))
    pinned: set[str] = set()
    weights = np.clip(targets, floor, commodity_cap)
    while True:
        free = ~np.isin(sector_of, list(pinned))
        if not free.any():
            break
        remaining = total - sum(rooms[name] for name in pinned)
        what = "the commodities outside capped sectors" if pinned else "the other commodities"
        factor = _factor(targets[free], floor, commodity_cap, remaining, what)
        weights[free] = np.clip(targets[free] * factor, floor, commodity_cap)
        over = {
            name
            for name in names
            if name not in pinned
            and weights[sector_of == name].sum() > rooms[name] * (1 + RELATIVE_TOLERANCE)
        }
        if not over:
            break
        pinned |= over
    for name in pinned:
        members = sector_of == name
        own = _factor(targets[members], floor, commodity_cap, rooms[name], f"sector {name}")
        weights[members] = np.clip(targets[members] * own, floor, commodity_cap)
    return weights


def _kept_back(
    phased: np.ndarray,
    computed: np.ndarray,
    new: np.ndarray,
    sector_of: np.ndarray,
    *,
    commodity_cap: float,
    sector_cap: float,
) -> float:
    """The smallest θ in [0, 1] for which the others can hold what the new commodities at
    ``phased + θ × (computed − phased)`` leave them within the caps.

    The others' room is Σ over sectors of min(sector cap − the sector's new weight, its
    other members × commodity cap): piecewise linear in θ, and it shrinks no faster than
    what they must hold, so the first θ where it suffices is found on one linear piece.
    """
    gap = np.where(new, computed - phased, 0.0)
    held = np.where(new, phased, 0.0)
    sectors = sorted(set(sector_of.tolist()))
    others = {s: int(((sector_of == s) & ~new).sum()) for s in sectors}
    new_in = {s: float(held[sector_of == s].sum()) for s in sectors}
    gap_in = {s: float(gap[sector_of == s].sum()) for s in sectors}

    def slack(theta: float) -> float:
        room = sum(
            min(sector_cap - new_in[s] - theta * gap_in[s], others[s] * commodity_cap)
            for s in sectors
            if others[s]
        )
        return room - (1.0 - held.sum() - theta * gap.sum())

    points = sorted(
        {0.0, 1.0}
        | {
            t
            for s in sectors
            if others[s] and gap_in[s] > 0
            for t in [(sector_cap - new_in[s] - others[s] * commodity_cap) / gap_in[s]]
            if 0.0 < t < 1.0
        }
    )
    tolerance = RELATIVE_TOLERANCE
    before, short = points[0], slack(points[0])
    if short >= -tolerance:
        return 0.0
    for point in points[1:]:
        now = slack(point)
        if now >= -tolerance:
            return before + (point - before) * (-short) / (now - short)
        before, short = point, now
    return 1.0


def phased_weights(
    computed: Sequence[float],
    sectors: Sequence[str],
    steps: Sequence[int],
    rebalances: int,
    *,
    commodity_cap: float,
    sector_cap: float,
    floor: float,
) -> np.ndarray:
    """The weights with new commodities phased in over ``rebalances`` rebalances.

    ``steps[i]`` is k when commodity i enters its k-th rebalance since it had no weight
    (0: it is not new). A commodity with 0 < k < ``rebalances`` gets max(k/N × its computed
    weight, floor); the others share the rest by the rule of :func:`capped_weights` (their
    computed weights times a common factor, under the commodity cap and, per sector, the
    sector cap less the new commodities' weight in it). Where the others cannot hold the
    rest within their caps, every new commodity keeps the same fraction θ of the weight
    the phase-in withheld from it, θ as small as the caps allow. Unchanged when no
    commodity is new, or every one is.
    """
    computed = np.asarray(computed, dtype=np.float64)
    sector_of = np.asarray(sectors, dtype=object)
    step = np.asarray(steps, dtype=np.int64)
    if not (computed.shape == sector_of.shape == step.shape):
        raise InfeasibleWeights("computed weights, sectors and steps must be equally long")
    new = (step > 0) & (step < rebalances)
    if not new.any() or new.all():
        return computed
    phased = np.where(new, np.minimum(np.maximum(computed * step / rebalances, floor), computed), 0)
    theta = _kept_back(
        phased, computed, new, sector_of, commodity_cap=commodity_cap, sector_cap=sector_cap
    )
    weights = computed.copy()
    weights[new] = phased[new] + theta * (computed[new] - phased[new])
    others = ~new
    rooms = {
        name: sector_cap - float(weights[new & (sector_of == name)].sum())
        for name in set(sector_of[others].tolist())
    }
    weights[others] = _shared(
        computed[others],
        sector_of[others],
        1.0 - float(weights[new].sum()),
        rooms,
        commodity_cap=commodity_cap,
        floor=floor,
    )
    return weights
