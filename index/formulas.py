"""Researcher index-number formulas over long-form price and quantity data.

Input is a Polars frame with columns ``period``, ``item``, ``price``, ``quantity``: one row
per item priced in a period. Periods may be integers, dates or strings; they are ordered by
sorting. Output is a frame ``period, value``; ``value`` is null where a comparison has no
item priced in both periods.

Bilateral formulas compare two periods (``compute``); the multilateral GEKS, Geary-Khamis
and weighted time-product-dummy indices compare every period of a rolling window at once
(``geks``, ``gk``, ``wtpd``) and extend the series past the first window by a splice.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from core.errors import InvalidInput
from index.kernels import formulas as kernels
from index.kernels import multilateral

FORMULAS = ("laspeyres", "paasche", "fisher", "tornqvist", "walsh", "jevons", "dutot", "carli")
METHODS = ("fixed", "chained")
MULTILATERAL = ("geks", "gk", "wtpd")
GEKS_BASES = ("fisher", "tornqvist", "walsh", "jevons")
"""Bilateral formulas that satisfy time reversal, as GEKS requires."""
SPLICES = (
    "movement",
    "window",
    "half",
    "mean",
    "wisp",
    "hasp",
    "mean_published",
    "fbew",
    "fbmw",
)
"""How each window after the first extends the series. ``movement``, ``window``, ``half``
and ``mean`` link the new window's movement onto the previous window's levels; ``wisp``,
``hasp`` and ``mean_published`` onto the published series; ``fbew`` and ``fbmw`` onto a
fixed base every ``window - 1`` periods (see ``geks``)."""

_FORMULA_CODES = {
    "laspeyres": kernels.LASPEYRES,
    "paasche": kernels.PAASCHE,
    "fisher": kernels.FISHER,
    "tornqvist": kernels.TORNQVIST,
    "walsh": kernels.WALSH,
    "jevons": kernels.JEVONS,
    "dutot": kernels.DUTOT,
    "carli": kernels.CARLI,
}
_METHOD_CODES = {"geks": multilateral.GEKS, "gk": multilateral.GK, "wtpd": multilateral.WTPD}
_SPLICE_CODES = {
    "movement": multilateral.MOVEMENT,
    "window": multilateral.WINDOW,
    "half": multilateral.HALF,
    "mean": multilateral.MEAN,
    "wisp": multilateral.WISP,
    "hasp": multilateral.HASP,
    "mean_published": multilateral.MEAN_PUBLISHED,
    "fbew": multilateral.FBEW,
    "fbmw": multilateral.FBMW,
}
_COLUMNS = ("period", "item", "price", "quantity")


def compute(
    data: pl.DataFrame,
    formula: str,
    method: Literal["fixed", "chained"] = "fixed",
    base_period=None,
) -> pl.DataFrame:
    """Index of every period against ``base_period`` (default: the first period).

    ``fixed`` compares each period with the base directly; ``chained`` multiplies
    period-to-period links, each on the items priced in both of its periods.
    """
    code = _choice("formula", formula, FORMULAS)
    _choice("method", method, METHODS)
    periods, prices, quantities = _dense(data)
    base = _base_position(periods, base_period)
    kernel = kernels.fixed_base if method == "fixed" else kernels.chained
    return _result(periods, kernel(prices, quantities, base, _FORMULA_CODES[code]))


def geks(
    data: pl.DataFrame,
    base: Literal["fisher", "tornqvist", "walsh", "jevons"],
    window: int,
    splice: str = "movement",
) -> pl.DataFrame:
    """GEKS index over a rolling window of ``window`` periods, 1 in the first period.

    Within a window, P(s, t) = prod_k [P(s, k) P(k, t)] ** (1 / W), each P the bilateral
    ``base`` formula over the items priced in both periods. The first window gives the
    first ``window`` values; each later period T comes from a window ending at T:

    - ``movement``, ``window``, ``half``, ``mean``: ``new`` holds the last ``window``
      periods, ``old`` the ones before; value(T) = value(T-1) * [new(T) / new(k)] /
      [old(T-1) / old(k)], k the period before T, the new window's first period, its
      middle one (position (window - 1) // 2), or the geometric mean over every overlap
      period;
    - ``wisp``, ``hasp``, ``mean_published``: ``new`` as above; value(T) = value(k) *
      new(T) / new(k), onto the published value at the new window's first period, its
      middle one, or the geometric mean over every overlap period;
    - ``fbew``, ``fbmw``: value(T) = value(b) * new(T) / new(b), b the last fixed base
      before T, ``new`` running from b to T (fbew) or holding the last ``window`` periods
      (fbmw). The bases are the periods 0, window - 1, 2 (window - 1), …: with monthly data
      starting in December and ``window`` 13, each December.
    """
    code = _choice("base", base, GEKS_BASES)
    return _multilateral(data, "geks", window, splice, _FORMULA_CODES[code])


def gk(data: pl.DataFrame, window: int, splice: str = "movement") -> pl.DataFrame:
    """Geary-Khamis index over a rolling window, extended as ``geks`` says.

    P(t) = sum_i p_ti q_ti / sum_i v_i q_ti, with each item's quality adjustment factor
    v_i = sum_t q_ti p_ti / P(t) / sum_t q_ti over the window. A period joined to the
    window's first by no chain of items priced in common is null.
    """
    return _multilateral(data, "gk", window, splice)


def wtpd(data: pl.DataFrame, window: int, splice: str = "movement") -> pl.DataFrame:
    """Weighted time-product-dummy index over a rolling window, extended as ``geks`` says.

    ln p_ti = a_t + b_i fitted over the window by least squares weighted by each item's
    expenditure share in its period; P(t) = exp(a_t - a_first). A period joined to the
    window's first by no chain of items priced in common is null.
    """
    return _multilateral(data, "wtpd", window, splice)


def multilateral_work(method: str, periods: int, items: int, window: int) -> int:
    """A rough estimate of ``method``'s work (``geks``, ``gk``, ``wtpd``), in steps of
    about a nanosecond."""
    windows = max(periods - window + 1, 1)
    if method == "geks":
        pairs = periods * (2 * window - 1)
        return pairs * (200 + 25 * items) + windows * window * window
    return windows * (window * (100 + items * (items + 20) // 3) + items**3 // 3)


def _multilateral(
    data: pl.DataFrame, method: str, window: int, splice: str, formula: int = -1
) -> pl.DataFrame:
    splice = _choice("splice", splice, SPLICES)
    periods, prices, quantities = _dense(data)
    window = _window(window, len(periods))
    # Threads pay for themselves only beyond about a millisecond of work.
    threaded = multilateral_work(method, len(periods), prices.shape[1], window) > 1_000_000
    log_pairs = np.empty((0, 0))
    if method == "geks":
        pairwise = kernels.pairwise if threaded else kernels.pairwise_serial
        log_pairs = np.log(pairwise(prices, quantities, formula, window))
    windows = multilateral.windows if threaded else multilateral.windows_serial
    code = _SPLICE_CODES[splice]
    levels = windows(_METHOD_CODES[method], prices, quantities, log_pairs, window, code)
    return _result(periods, multilateral.extend(levels, window, code))


def _window(window, periods: int) -> int:
    if isinstance(window, bool) or not isinstance(window, int | np.integer):
        raise InvalidInput("window", f"must be an integer, got {window!r}")
    if window < 2:
        raise InvalidInput("window", f"must be at least 2 periods, got {window}")
    if window > periods:
        raise InvalidInput(
            "window",
            f"{window} periods is longer than the {periods} periods in the data; "
            f"give 2 to {periods}",
        )
    return int(window)


def _choice(field: str, value, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise InvalidInput(field, f"unknown {field} {value!r}; valid: {', '.join(valid)}")
    return value


def _dense(data: pl.DataFrame) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """Checked data as (sorted periods, prices[t, i], quantities[t, i]), NaN where absent."""
    if not isinstance(data, pl.DataFrame):
        raise InvalidInput("data", f"must be a polars DataFrame, got {type(data).__name__}")
    for column in _COLUMNS:
        if column not in data.columns:
            raise InvalidInput(column, "missing column")
    if data.height == 0:
        raise InvalidInput("data", "no rows")
    for column in ("period", "item"):
        if data[column].null_count():
            raise InvalidInput(column, "contains nulls")
    data = data.select(
        pl.col("period"),
        pl.col("item"),
        *(_as_float(data, column) for column in ("price", "quantity")),
    )
    for column in ("price", "quantity"):
        _check_positive_finite(data, column)
    if data.select(pl.struct("period", "item").is_duplicated().any()).item():
        raise InvalidInput("item", "appears more than once in a period")

    positions = data.select(
        (pl.col("period").rank("dense") - 1).alias("t"),
        (pl.col("item").rank("dense") - 1).alias("i"),
    )
    t, i = positions["t"].to_numpy(), positions["i"].to_numpy()
    periods = data["period"].unique().sort()
    shape = (len(periods), int(i.max()) + 1)
    prices, quantities = np.full(shape, np.nan), np.full(shape, np.nan)
    prices[t, i] = data["price"].to_numpy()
    quantities[t, i] = data["quantity"].to_numpy()
    return periods, prices, quantities


def _as_float(data: pl.DataFrame, column: str) -> pl.Expr:
    if not data[column].dtype.is_numeric():
        raise InvalidInput(column, f"must be numeric, got {data[column].dtype}")
    return pl.col(column).cast(pl.Float64)


def _check_positive_finite(data: pl.DataFrame, column: str) -> None:
    value = pl.col(column)
    bad = data.filter(value.is_null() | ~value.is_finite() | (value <= 0))
    if bad.height:
        first = bad.row(0, named=True)
        raise InvalidInput(
            column,
            f"must be positive and finite; {bad.height} row(s) are not, first at "
            f"period {first['period']!r}, item {first['item']!r}: {first[column]!r}",
        )


def _base_position(periods: pl.Series, base_period) -> int:
    if base_period is None:
        return 0
    try:
        return periods.to_list().index(base_period)
    except ValueError:
        raise InvalidInput("base_period", f"{base_period!r} is not a period in the data") from None


def _result(periods: pl.Series, values: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"period": periods, "value": pl.Series(values).fill_nan(None)})
