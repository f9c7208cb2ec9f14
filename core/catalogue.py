"""The catalogue: the identity of the commodities, sectors and indices, read once from a
TOML file. Everything that changes a published number (base date and value, weights,
production values, price bands, normalisation) is the methodology's
(:mod:`core.methodology`); the catalogue and a methodology version together define the
indices (:meth:`Catalogue.index_definitions`)."""

from __future__ import annotations

import datetime as dt
import functools
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import CatalogueError
from core.methodology import Methodology

IndexKind = Literal["composite", "sector", "commodity"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Commodity(_Frozen):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,31}$")
    name_en: str
    name_zh: str
    sector: str
    unit: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    listed_on: dt.date
    spec: dict[str, Any]


class Sector(_Frozen):
    code: str
    index_code: str
    name_en: str
    name_zh: str


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
        index_codes = [self.composite.code, *(s.index_code for s in self.sectors), *codes]
        if len(set(index_codes)) != len(index_codes):
            raise ValueError("index codes must be unique across composite, sectors, commodities")
        return self

    def commodity(self, code: str) -> Commodity:
        for c in self.commodities:
            if c.code == code:
                return c
        raise KeyError(code)

    def index_definitions(self, methodology: Methodology) -> list[IndexDefinition]:
        """Composite first, then sectors, then one index per commodity, with the base and
        base-date weights of ``methodology`` (a :class:`MethodologyError` names a commodity
        it gives no parameters for). A commodity that joins later (``joins_on``) is not
        among the base-date constituents: it enters with a weight set of its own date."""
        family = methodology.family
        common = {"unit": "points", "base_date": family.base_date, "base_value": family.base_value}
        weight = {c.code: methodology.commodity(c.code).weight for c in self.commodities}
        founding = [c for c in self.commodities if methodology.commodity(c.code).joins_on is None]
        out = [
            IndexDefinition(
                code=self.composite.code,
                kind="composite",
                name_en=self.composite.name_en,
                name_zh=self.composite.name_zh,
                constituents=tuple((c.code, weight[c.code]) for c in founding),
                **common,
            )
        ]
        for s in self.sectors:
            members = [c for c in founding if c.sector == s.code] or [
                c for c in self.commodities if c.sector == s.code
            ]  # a sector whose members all join later starts with them
            total = math.fsum(weight[c.code] for c in members)
            out.append(
                IndexDefinition(
                    code=s.index_code,
                    kind="sector",
                    name_en=s.name_en,
                    name_zh=s.name_zh,
                    constituents=tuple((c.code, weight[c.code] / total) for c in members),
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
