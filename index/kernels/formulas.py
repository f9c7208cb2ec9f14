"""Numba kernels for bilateral price index formulas, and the matrix of them GEKS uses.

Inputs are dense matrices indexed ``[period, item]``: ``prices`` and ``quantities`` as
float64, NaN where the item is absent in that period. Every comparison of two periods
uses only the items priced in both. A comparison with no such item is NaN, and so is
anything built from it.
"""

from __future__ import annotations

import numba
import numpy as np

from index.jit import njit, njit_parallel

LASPEYRES = 0
PAASCHE = 1
FISHER = 2
TORNQVIST = 3
WALSH = 4
JEVONS = 5
DUTOT = 6
CARLI = 7


@njit
def bilateral(p0, q0, p1, q1, formula):
    """Price index of period 1 against period 0 over the items priced in both."""
    matched = np.nonzero(np.isfinite(p0) & np.isfinite(p1))[0]
    if matched.size == 0:
        return np.nan
    p0, q0, p1, q1 = p0[matched], q0[matched], p1[matched], q1[matched]
    relatives = p1 / p0
    if formula == LASPEYRES:
        return np.sum(p1 * q0) / np.sum(p0 * q0)
    if formula == PAASCHE:
        return np.sum(p1 * q1) / np.sum(p0 * q1)
    if formula == FISHER:
        laspeyres = np.sum(p1 * q0) / np.sum(p0 * q0)
        paasche = np.sum(p1 * q1) / np.sum(p0 * q1)
        return np.sqrt(laspeyres * paasche)
    if formula == TORNQVIST:
        share0 = p0 * q0 / np.sum(p0 * q0)
        share1 = p1 * q1 / np.sum(p1 * q1)
        return np.exp(np.sum((share0 + share1) / 2.0 * np.log(relatives)))
    if formula == WALSH:
        weight = np.sqrt(q0 * q1)
        return np.sum(p1 * weight) / np.sum(p0 * weight)
    if formula == JEVONS:
        return np.exp(np.mean(np.log(relatives)))
    if formula == DUTOT:
        return np.sum(p1) / np.sum(p0)
    if formula == CARLI:
        return np.mean(relatives)
    return np.nan


@njit
def fixed_base(prices, quantities, base, formula):
    """Each period against ``base`` directly."""
    periods = prices.shape[0]
    out = np.empty(periods)
    for t in range(periods):
        out[t] = bilateral(prices[base], quantities[base], prices[t], quantities[t], formula)
    return out


@njit
def chained(prices, quantities, base, formula):
    """Product of period-to-period links from ``base`` to each period (1 at ``base``)."""
    periods = prices.shape[0]
    links = np.empty(periods)
    links[0] = 1.0
    for t in range(1, periods):
        links[t] = bilateral(prices[t - 1], quantities[t - 1], prices[t], quantities[t], formula)
    out = np.empty(periods)
    out[base] = 1.0
    for t in range(base + 1, periods):
        out[t] = out[t - 1] * links[t]
    for t in range(base - 1, -1, -1):
        out[t] = out[t + 1] / links[t + 1]
    return out


def _pairwise(prices, quantities, formula, band):
    """``M[j, k]`` = index of period k against period j, for ``|j - k| < band``; else NaN."""
    periods = prices.shape[0]
    out = np.full((periods, periods), np.nan)
    for j in numba.prange(periods):
        for k in range(max(0, j - band + 1), min(periods, j + band)):
            out[j, k] = bilateral(prices[j], quantities[j], prices[k], quantities[k], formula)
    return out


pairwise = njit_parallel(_pairwise)
pairwise_serial = njit(_pairwise)
"""``pairwise`` on one thread."""
