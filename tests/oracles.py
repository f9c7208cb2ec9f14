"""Published index values (oracles) and the tolerance each was published at.

Reads the files in tests/data/oracles/ (see the README there for sources). Nothing here
computes an index: expected values come only from the files.
"""

from __future__ import annotations

import csv
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

ORACLE_DIR = Path(__file__).parent / "data" / "oracles"
DATASETS = {
    "ppi_manual": ("ppi_manual_6x5_data.csv", "ppi_manual_6x5_expected.csv"),
    "indexnumr": ("indexnumr_ces_sigma_2_data.csv", "indexnumr_ces_sigma_2_expected.csv"),
    "priceindices": (
        "priceindices_milk_monthly_unit_values.csv",
        "priceindices_milk_expected.csv",
    ),
}
QUANTITY_WEIGHTED = {"laspeyres", "paasche", "fisher", "tornqvist", "walsh"}


@dataclass(frozen=True)
class Tolerance:
    absolute: float = 0.0
    relative: float = 0.0
    round_to: int | None = None
    """Round the computed value to this many decimals before comparing."""

    def admits(self, actual: float, expected: float) -> bool:
        if self.round_to is not None:
            actual = round(actual, self.round_to)
        allowed = max(self.absolute, self.relative * abs(expected)) + 1e-15
        return abs(actual - expected) <= allowed


@dataclass(frozen=True)
class Expected:
    """One row of an expected-values file; ``line`` is its line number in that file."""

    dataset: str
    line: int
    period: str
    formula: str
    kind: str
    value: float
    value_text: str
    base_period: str
    params: str
    precision: str
    source_key: str

    @property
    def tolerance(self) -> Tolerance:
        return tolerance(self)

    @property
    def test_id(self) -> str:
        return f"{self.dataset}:{self.line}-{self.formula}-{self.kind}-{self.period}"


@functools.cache
def expected(dataset: str) -> tuple[Expected, ...]:
    with open(ORACLE_DIR / DATASETS[dataset][1], newline="") as file:
        rows = list(csv.DictReader(file))
    return tuple(
        Expected(
            dataset=dataset,
            line=line,
            period=row["period"],
            formula=row["formula"],
            kind=row["chained_or_fixed"],
            value=float(row["value"]),
            value_text=row["value"],
            base_period=row["base_period"],
            params=row["params"],
            precision=row["precision"],
            source_key=row["source_key"],
        )
        for line, row in enumerate(rows, start=2)
    )


@functools.cache
def prices(dataset: str) -> pl.DataFrame:
    """Long-form ``period, item, price, quantity``; periods as in the file (int or str)."""
    return pl.read_csv(ORACLE_DIR / DATASETS[dataset][0])


def tolerance(row: Expected) -> Tolerance:
    """The comparison each row's ``precision`` column (and the README) calls for."""
    precision = row.precision
    if precision.startswith("4 dp (compare with abs tol 1e-4"):
        return Tolerance(absolute=1e-4, round_to=4)
    if precision.startswith("4 dp (test rounds)"):
        return Tolerance(round_to=4)
    if precision.startswith("R print"):
        # Printed values: allow half a unit in the last printed decimal.
        return Tolerance(absolute=0.5 * 10.0 ** -_decimals(row.value_text))
    if precision.startswith("full double"):
        return Tolerance(relative=1e-12)
    if precision.startswith("~1e-8 rel"):
        return Tolerance(relative=2e-8)
    rounded = re.match(r"stored rounded to (\d+) dp", precision)
    if rounded:
        # README: IndexNumR's quantity-weighted expectations hold to 2e-8 relative only.
        relative = 2e-8 if row.formula in QUANTITY_WEIGHTED else 0.0
        return Tolerance(absolute=0.5 * 10.0 ** -int(rounded[1]), relative=relative)
    raise ValueError(f"no tolerance rule for precision {precision!r}")


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def close_to(actual: float, row: Expected) -> bool:
    return math.isfinite(actual) and row.tolerance.admits(actual, row.value)
