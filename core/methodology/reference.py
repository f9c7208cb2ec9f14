"""The value-affecting reference data of a methodology version: the index family's base,
and per commodity its composite weight, production value, price band (the sanity filter at
ingest) and how a trade is normalised to its benchmark specification."""

from __future__ import annotations

import datetime as dt
import math

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProRata(_Frozen):
    """Scale the price to the benchmark grade: price × basis / attribute (iron ore: Fe)."""

    attribute: str
    basis: float = Field(gt=0, allow_inf_nan=False)


class Penalty(_Frozen):
    """Deduct ``per_unit`` (benchmark currency per benchmark unit) for each ``step`` of the
    attribute above ``above``, pro rata for fractions of a step."""

    attribute: str
    above: float = Field(allow_inf_nan=False)
    per_unit: float = Field(ge=0, allow_inf_nan=False)
    step: float = Field(default=1.0, gt=0, allow_inf_nan=False)


class Normalisation(_Frozen):
    """How a trade is brought to the commodity's benchmark specification (ingest/normalise.py).

    ``units``: other accepted units → benchmark units per one of them (kg → t: 0.001).
    ``wet_units``: units quoted wet; dry = wet × (1 − moisture_pct / 100).
    ``currencies``: other accepted currencies, converted by the daily FX table.
    ``differentials``: attribute → {value → premium over the benchmark}, deducted.
    ``ranges``: attribute → accepted [low, high]; outside is ``quality_out_of_range``.
    """

    units: dict[str, float] = Field(default_factory=dict)
    wet_units: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    pro_rata: ProRata | None = None
    penalties: tuple[Penalty, ...] = ()
    differentials: dict[str, dict[str, float]] = Field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    allow_negative_prices: bool = False

    @model_validator(mode="after")
    def _known_attributes(self) -> Normalisation:
        from core.fields import NUMERIC_QUALITY_FIELDS, QUALITY_FIELDS

        penalised = [p.attribute for p in self.penalties]
        if len(set(penalised)) != len(penalised):
            raise ValueError("at most one penalty per attribute")
        named = [*penalised, *self.ranges]
        named += [self.pro_rata.attribute] if self.pro_rata else []
        for attribute in named:
            if attribute not in NUMERIC_QUALITY_FIELDS:
                raise ValueError(f"{attribute!r} is not a numeric quality attribute")
        for attribute, table in self.differentials.items():
            if attribute not in QUALITY_FIELDS:
                raise ValueError(f"{attribute!r} is not a quality attribute")
            if attribute in NUMERIC_QUALITY_FIELDS:
                for key in table:
                    float(key)
        for unit, factor in self.units.items():
            if not (factor > 0 and math.isfinite(factor)):
                raise ValueError(f"unit factor of {unit!r} must be a positive number")
        for low, high in self.ranges.values():
            if not low <= high:
                raise ValueError("a range must satisfy low <= high")
        return self


class CommodityParameters(_Frozen):
    """One commodity's value-affecting parameters (identity stays in the catalogue)."""

    weight: float = Field(gt=0, le=1)
    """Its weight in the composite from the base date (later weights: the rebalance), or
    from ``joins_on``."""
    joins_on: dt.date | None = None
    """A commodity that joins published indices: from this date the composite weighs it
    ``weight`` and every other member ``× (1 − weight)``, its sector re-scales the new
    composite weights of its members to sum to 1, and both chain-link on the publication
    day before, so neither level jumps."""
    production_value: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    price_band: tuple[float, float]
    normalisation: Normalisation = Field(default_factory=Normalisation)

    @model_validator(mode="after")
    def _band_ordered(self) -> CommodityParameters:
        low, high = self.price_band
        negative_ok = self.normalisation.allow_negative_prices
        if not ((low >= 0 or negative_ok) and low < high):
            raise ValueError("price_band must satisfy 0 <= low < high")
        return self


class IndexFamily(_Frozen):
    base_date: dt.date
    base_value: float = Field(gt=0)


def check_weights(commodities: dict[str, CommodityParameters]) -> None:
    """The base-date weights (of the commodities that do not join later) sum to 1; a
    joining commodity's weight is below 1."""
    total = math.fsum(c.weight for c in commodities.values() if c.joins_on is None)
    if commodities and abs(total - 1.0) > 1e-9:
        raise ValueError(f"composite weights sum to {total}, not 1")
    for code, c in commodities.items():
        if c.joins_on is not None and c.weight >= 1:
            raise ValueError(f"{code} joins with weight {c.weight}: it must be below 1")
