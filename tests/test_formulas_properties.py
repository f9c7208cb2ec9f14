"""index.formulas against the slow references in tests/naive.py, and its input checks."""

from __future__ import annotations

import datetime as dt
import functools
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from index import formulas
from tests import naive

RELATIVE_TOLERANCE = 1e-12
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

# Ten to a uniform power: values spread across seven orders of magnitude.
magnitudes = st.floats(min_value=-3.0, max_value=4.0).map(lambda exponent: 10.0**exponent)


@st.composite
def panels(draw) -> list[tuple[int, int, float, float]]:
    """Rows (period, item, price, quantity); items drop in and out, every period has one."""
    periods = draw(st.integers(min_value=2, max_value=10))
    items = draw(st.integers(min_value=1, max_value=8))
    cells = periods * items

    def column(elements):
        return draw(st.lists(elements, min_size=cells, max_size=cells))

    present, prices, quantities = column(st.booleans()), column(magnitudes), column(magnitudes)
    rows = []
    for period in range(periods):
        always = draw(st.integers(min_value=0, max_value=items - 1))
        for item in range(items):
            cell = period * items + item
            if present[cell] or item == always:
                rows.append((period, item, prices[cell], quantities[cell]))
    return rows


def as_frame(rows) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"period": pl.Int64, "item": pl.Int64, "price": pl.Float64, "quantity": pl.Float64},
        orient="row",
    )


def as_dicts(rows) -> tuple[dict, dict]:
    prices, quantities = {}, {}
    for period, item, price, quantity in rows:
        prices.setdefault(period, {})[item] = price
        quantities.setdefault(period, {})[item] = quantity
    return prices, quantities


def assert_series_close(result: pl.DataFrame, reference: dict) -> None:
    computed = dict(result.iter_rows())
    assert list(computed) == sorted(reference)
    for period, expected in reference.items():
        actual = computed[period]
        if expected is None:
            assert actual is None, f"period {period}: {actual} where no items match"
        else:
            assert actual is not None, f"period {period}: null, expected {expected}"
            assert math.isclose(actual, expected, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0), (
                f"period {period}: {actual!r} vs {expected!r}"
            )


@pytest.mark.parametrize("formula", formulas.FORMULAS)
@PROPERTY_SETTINGS
@given(rows=panels(), data=st.data())
def test_bilateral_matches_naive(formula: str, rows, data) -> None:
    prices, quantities = as_dicts(rows)
    base = data.draw(st.sampled_from(sorted(prices)), label="base")
    frame = as_frame(rows)
    for method, reference in (("fixed", naive.fixed_base_index), ("chained", naive.chained_index)):
        result = formulas.compute(frame, formula, method, base_period=base)
        assert_series_close(result, reference(formula, prices, quantities, base))


@pytest.mark.parametrize("base", formulas.GEKS_BASES)
@PROPERTY_SETTINGS
@given(rows=panels(), data=st.data())
def test_geks_matches_naive(base: str, rows, data) -> None:
    prices, quantities = as_dicts(rows)
    window = data.draw(st.integers(min_value=2, max_value=len(prices)), label="window")
    frame = as_frame(rows)
    for splice in ("movement", "window", "half", "mean"):
        result = formulas.geks(frame, base, window, splice)
        assert_series_close(result, naive.geks_index(base, prices, quantities, window, splice))


MULTILATERAL = [("geks", "fisher"), ("geks", "jevons"), ("gk", None), ("wtpd", None)]


def multilateral(frame: pl.DataFrame, method: str, base, window: int, splice: str):
    if method == "geks":
        return formulas.geks(frame, base, window, splice)
    return getattr(formulas, method)(frame, window, splice)


def naive_window(method: str, base, prices: dict, quantities: dict):
    """The slow reference's levels of one window, each window computed once."""
    if method == "geks":
        return functools.cache(functools.partial(naive.geks_window, base, prices, quantities))
    one = naive.geary_khamis_window if method == "gk" else naive.wtpd_window
    return functools.cache(functools.partial(one, prices, quantities))


@pytest.mark.parametrize(("method", "base"), MULTILATERAL)
@PROPERTY_SETTINGS
@given(rows=panels(), data=st.data())
def test_multilateral_matches_naive_in_every_splice(method: str, base, rows, data) -> None:
    prices, quantities = as_dicts(rows)
    window = data.draw(st.integers(min_value=2, max_value=len(prices)), label="window")
    frame = as_frame(rows)
    levels = naive_window(method, base, prices, quantities)
    for splice in formulas.SPLICES:
        result = multilateral(frame, method, base, window, splice)
        expected = naive.extended_index(levels, sorted(prices), window, splice)
        assert_series_close(result, expected)


SAMPLE = pl.DataFrame(
    {
        "period": [dt.date(2024, 2, 1), dt.date(2024, 1, 1), dt.date(2024, 2, 1)],
        "item": ["copper", "copper", "zinc"],
        "price": [9000.0, 8500.0, 2600.0],
        "quantity": [3.0, 2.0, 5.0],
    }
)


def test_periods_come_out_sorted_whatever_their_type() -> None:
    result = formulas.compute(SAMPLE, "laspeyres", base_period=dt.date(2024, 1, 1))
    assert result["period"].to_list() == [dt.date(2024, 1, 1), dt.date(2024, 2, 1)]
    assert result["value"].to_list() == pytest.approx([1.0, 9000.0 / 8500.0], rel=1e-15)


def test_period_with_no_matched_item_is_null() -> None:
    disjoint = SAMPLE.filter(~((pl.col("item") == "copper") & (pl.col("price") == 9000.0)))
    result = formulas.compute(disjoint, "jevons")
    assert result["value"].to_list() == [1.0, None]


@pytest.mark.parametrize("column", ["price", "quantity"])
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, None])
def test_non_positive_or_non_finite_values_name_the_column(column: str, bad) -> None:
    data = SAMPLE.with_columns(pl.Series(column, [bad, 1.0, 1.0], dtype=pl.Float64))
    with pytest.raises(InvalidInput, match=column) as raised:
        formulas.compute(data, "fisher")
    assert raised.value.field == column
    assert "positive and finite" in raised.value.reason
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("column", ["period", "item", "price", "quantity"])
def test_missing_column_is_named(column: str) -> None:
    with pytest.raises(InvalidInput, match="missing column") as raised:
        formulas.compute(SAMPLE.drop(column), "fisher")
    assert raised.value.field == column


def test_unknown_formula_lists_the_valid_names() -> None:
    with pytest.raises(InvalidInput) as raised:
        formulas.compute(SAMPLE, "lowe")
    assert raised.value.field == "formula"
    for name in formulas.FORMULAS:
        assert name in str(raised.value)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: formulas.compute(SAMPLE, "fisher", "spliced"), "method"),
        (
            lambda: formulas.compute(SAMPLE, "fisher", base_period=dt.date(2023, 1, 1)),
            "base_period",
        ),
        (lambda: formulas.compute(SAMPLE, "fisher", base_period="2024-01-01"), "base_period"),
        (lambda: formulas.compute(pl.concat([SAMPLE, SAMPLE]), "fisher"), "item"),
        (lambda: formulas.compute(SAMPLE.with_columns(price=pl.lit("x")), "fisher"), "price"),
        (lambda: formulas.compute(SAMPLE.clear(), "fisher"), "data"),
        (lambda: formulas.compute(SAMPLE.to_dict(as_series=False), "fisher"), "data"),
        (lambda: formulas.geks(SAMPLE, "laspeyres", 2), "base"),
        (lambda: formulas.geks(SAMPLE, "fisher", 2, "mean_pub"), "splice"),
        (lambda: formulas.gk(SAMPLE, 2, "chained"), "splice"),
        (lambda: formulas.wtpd(SAMPLE, 3), "window"),
        (lambda: formulas.gk(SAMPLE, 2.0), "window"),
        (lambda: formulas.wtpd(SAMPLE.drop("quantity"), 2), "quantity"),
        (lambda: formulas.geks(SAMPLE, "fisher", 3), "window"),
        (lambda: formulas.geks(SAMPLE, "fisher", 1), "window"),
    ],
)
def test_bad_arguments_name_the_field(call, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        call()
    assert raised.value.field == field
