"""Researcher index-number formulas over long-form price and quantity data.

Input is a Polars frame with columns ``period``, ``item``, ``price``, ``quantity``: one row
per item priced in a period. Periods may be integers, dates or strings; they are ordered by
sorting. Output is a frame ``period, value``; ``value`` is null where a comparison has no
item priced in both periods.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from core.errors import InvalidInput
from index.kernels import formulas as kernels

FORMULAS = ("laspeyres", "paasche", "fisher", "tornqvist", "walsh", "jevons", "dutot", "carli")
METHODS = ("fixed", "chained")
GEKS_BASES = ("fisher", "tornqvist", "walsh", "jevons")
"""Bilateral formulas that satisfy time reversal, as GEKS requires."""
SPLICES = ("movement", "window", "half", "mean")

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
_SPLICE_CODES = {
    "movement": kernels.MOVEMENT,
    "window": kernels.WINDOW,
    "half": kernels.HALF,
    "mean": kernels.MEAN,
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

    The first window gives the first ``window`` values; each later period comes from the
    window ending there, spliced onto the series by ``splice``.
    """
    code = _choice("base", base, GEKS_BASES)
    splice = _choice("splice", splice, SPLICES)
    periods, prices, quantities = _dense(data)
    if isinstance(window, bool) or not isinstance(window, int | np.integer):
        raise InvalidInput("window", f"must be an integer, got {window!r}")
    if not 2 <= window <= len(periods):
        raise InvalidInput(
            "window", f"must be between 2 and the number of periods ({len(periods)}), got {window}"
        )
    pairs = kernels.pairwise(prices, quantities, _FORMULA_CODES[code], window)
    return _result(periods, kernels.rolling_geks(pairs, window, _SPLICE_CODES[splice]))


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
