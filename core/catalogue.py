"""The catalogue of commodities, sectors and indices, read once from a TOML file."""

from __future__ import annotations

import datetime as dt
import functools
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import CatalogueError

IndexKind = Literal["composite", "sector", "commodity"]


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


class Commodity(_Frozen):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,31}$")
    name_en: str
    name_zh: str
    sector: str
    unit: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    weight: float = Field(gt=0, le=1)
    production_value: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    listed_on: dt.date
    price_band: tuple[float, float]
    spec: dict[str, Any]
    normalisation: Normalisation = Field(default_factory=Normalisation)

    @model_validator(mode="after")
    def _band_ordered(self) -> Commodity:
        low, high = self.price_band
        negative_ok = self.normalisation.allow_negative_prices
        if not ((low >= 0 or negative_ok) and low < high):
            raise ValueError(f"price_band of {self.code} must satisfy 0 <= low < high")
        return self


class Sector(_Frozen):
    code: str
    index_code: str
    name_en: str
    name_zh: str


class IndexFamily(_Frozen):
    base_date: dt.date
    base_value: float = Field(gt=0)


class CompositeSpec(_Frozen):
    code: str
    name_en: str
    name_zh: str


class IndexDefinition(_Frozen):
    """One published index: its code, kind and constituents with their fixed weights."""

    code: str
    kind: IndexKind
    name_en: str
    name_zh: str
    unit: str
    base_date: dt.date
    base_value: float
    constituents: tuple[tuple[str, float], ...]


class Catalogue(_Frozen):
    index_family: IndexFamily
    composite: CompositeSpec
    sectors: tuple[Sector, ...]
    commodities: tuple[Commodity, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        codes = [c.code for c in self.commodities]
        if len(set(codes)) != len(codes):
            raise ValueError("commodity codes must be unique")
        sector_codes = {s.code for s in self.sectors}
        for c in self.commodities:
            if c.sector not in sector_codes:
                raise ValueError(f"commodity {c.code} names unknown sector {c.sector!r}")
        for s in self.sectors:
            if not any(c.sector == s.code for c in self.commodities):
                raise ValueError(f"sector {s.code} has no commodity")
        total = math.fsum(c.weight for c in self.commodities)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"composite weights sum to {total}, not 1")
        index_codes = [self.composite.code, *(s.index_code for s in self.sectors), *codes]
        if len(set(index_codes)) != len(index_codes):
            raise ValueError("index codes must be unique across composite, sectors, commodities")
        return self

    def commodity(self, code: str) -> Commodity:
        for c in self.commodities:
            if c.code == code:
                return c
        raise KeyError(code)

    def index_definitions(self) -> list[IndexDefinition]:
        """Composite first, then sectors, then one index per commodity."""
        family = self.index_family
        common = {"unit": "points", "base_date": family.base_date, "base_value": family.base_value}
        out = [
            IndexDefinition(
                code=self.composite.code,
                kind="composite",
                name_en=self.composite.name_en,
                name_zh=self.composite.name_zh,
                constituents=tuple((c.code, c.weight) for c in self.commodities),
                **common,
            )
        ]
        for s in self.sectors:
            members = [c for c in self.commodities if c.sector == s.code]
            total = math.fsum(c.weight for c in members)
            out.append(
                IndexDefinition(
                    code=s.index_code,
                    kind="sector",
                    name_en=s.name_en,
                    name_zh=s.name_zh,
                    constituents=tuple((c.code, c.weight / total) for c in members),
                    **common,
                )
            )
        out.extend(
            IndexDefinition(
                code=c.code,
                kind="commodity",
                name_en=c.name_en,
                name_zh=c.name_zh,
                constituents=((c.code, 1.0),),
                **common,
            )
            for c in self.commodities
        )
        return out


def parse_catalogue(text: str, source: str = "<string>") -> Catalogue:
    try:
        return Catalogue.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise CatalogueError(f"catalogue {source} is invalid: {exc}", source=source) from exc


@functools.cache
def load_catalogue(path: Path) -> Catalogue:
    return parse_catalogue(Path(path).read_text(encoding="utf-8"), str(path))
