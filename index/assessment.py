"""Checked wrapper around the daily assessment kernel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bcpi.errors import InvalidInput
from index.kernels.assessment import group_statistics

MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class DailyAssessments:
    """One row per (commodity, Beijing trading day) with at least one trade; sorted by both.

    ``first``/``stop`` locate each group's trades in the sorted order ``order``.
    """

    commodity_id: np.ndarray
    day: np.ndarray  # datetime64[D]
    vwap: np.ndarray
    trades: np.ndarray
    volume: np.ndarray
    high: np.ndarray
    low: np.ndarray
    exchanges: np.ndarray
    order: np.ndarray
    first: np.ndarray
    stop: np.ndarray


def _column(name: str, values, dtype) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=dtype)
    if array.ndim != 1:
        raise InvalidInput(name, "must be one-dimensional")
    return array


def trading_day(traded_at_ms: np.ndarray, utc_offset_ms: int) -> np.ndarray:
    """Local calendar day of each instant, as days since 1970-01-01."""
    return np.floor_divide(traded_at_ms + utc_offset_ms, MS_PER_DAY)


def daily_assessments(
    commodity_id,
    traded_at_ms,
    price,
    quantity,
    exchange_id,
    *,
    utc_offset_ms: int = 8 * 3_600_000,
) -> DailyAssessments:
    """Per commodity and local trading day: VWAP, trade count, volume, high, low, exchanges."""
    commodity = _column("commodity_id", commodity_id, np.int64)
    instants = _column("traded_at_ms", traded_at_ms, np.int64)
    prices = _column("price", price, np.float64)
    quantities = _column("quantity", quantity, np.float64)
    exchange = _column("exchange_id", exchange_id, np.int64)
    n = commodity.size
    for name, array in (
        ("traded_at_ms", instants),
        ("price", prices),
        ("quantity", quantities),
        ("exchange_id", exchange),
    ):
        if array.size != n:
            raise InvalidInput(name, f"has {array.size} values, commodity_id has {n}")
    for name, array in (("price", prices), ("quantity", quantities)):
        if n and not (np.all(np.isfinite(array)) and np.all(array > 0)):
            raise InvalidInput(name, "every value must be finite and > 0")

    day = trading_day(instants, utc_offset_ms)
    # Every column is a sort key, so the summation order (and so every bit of the result)
    # does not depend on the order the trades arrived in.
    order = np.lexsort((exchange, quantities, prices, instants, day, commodity))
    commodity, day = commodity[order], day[order]
    _, dense_exchange = np.unique(exchange, return_inverse=True)
    if n:
        change = np.flatnonzero((np.diff(commodity) != 0) | (np.diff(day) != 0)) + 1
        starts = np.concatenate(([0], change, [n])).astype(np.int64)
    else:
        starts = np.zeros(1, dtype=np.int64)
    vwap, trades, volume, high, low, exchanges = group_statistics(
        starts,
        prices[order],
        quantities[order],
        dense_exchange.astype(np.int64)[order],
        int(dense_exchange.max()) + 1 if n else 1,
    )
    first = starts[:-1]
    return DailyAssessments(
        commodity_id=commodity[first],
        day=day[first].astype("datetime64[D]"),
        vwap=vwap,
        trades=trades,
        volume=volume,
        high=high,
        low=low,
        exchanges=exchanges,
        order=order,
        first=first,
        stop=starts[1:],
    )
