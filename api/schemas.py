"""Response models (they also document the OpenAPI schema)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from publication.changes import Change
from publication.correction import CorrectionNotice


class Health(BaseModel):
    status: Literal["ok"]


class CommodityInfo(BaseModel):
    code: str
    name_en: str
    name_zh: str
    sector: str
    unit: str
    currency: str
    listed_on: dt.date
    spec: dict[str, Any] = Field(description="The benchmark specification trades normalise to")


class IndexInfo(BaseModel):
    code: str
    kind: Literal["composite", "sector", "commodity"]
    name_en: str
    name_zh: str
    unit: str
    base_date: dt.date = Field(
        validation_alias=AliasChoices("first_date", "base_date"),
        description="The day the index is its base value: the family's base date, or, for "
        "an index whose constituents were not all assessed then, its first such day",
    )
    base_value: float
    started: bool = Field(
        False,
        validation_alias=AliasChoices("started_on", "started"),
        description="Whether values are published, so that the base date is fixed",
    )

    @field_validator("started", mode="before")
    @classmethod
    def _started(cls, value: object) -> bool:
        return value is not None and value is not False


class Constituent(BaseModel):
    code: str
    name_en: str
    name_zh: str
    weight: float
    effective_from: dt.date


class LatestValue(BaseModel):
    code: str
    date: dt.date
    value: float
    status: str
    vintage: int
    methodology_version: str
    published_at: dt.datetime


class ConstantOut(BaseModel):
    """A normalising constant as it stood: a recomputed one is a new ``vintage``."""

    effective_from: dt.date
    reference_date: dt.date
    value: float
    vintage: int
    methodology_version: str
    computed_at: dt.datetime


class IndexDetail(IndexInfo):
    methodology_version: str
    normalising_constant: float | None = Field(
        description="The constant of the latest weight change, where the methodology uses one"
    )
    constants: list[ConstantOut] = Field(
        description="Every weight period's normalising constant, as it stood at as_of"
    )
    constituents: list[Constituent]
    latest: LatestValue | None


class SeriesPoint(BaseModel):
    """A point; optional fields appear as the frequency and transform call for them."""

    model_config = ConfigDict(extra="allow")

    date: dt.date
    time: dt.datetime | None = Field(None, description="Publication instant (intraday)")
    value: float | None = Field(description="Null where an assessment is suspended (no price)")
    status: str
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None


class AssessmentPoint(SeriesPoint):
    trades: int
    volume: float
    fallback: str


class Series(BaseModel):
    code: str
    frequency: str
    transform: str
    as_of: dt.datetime | None
    points: list[SeriesPoint]


class AssessmentSeries(Series):
    points: list[AssessmentPoint]  # type: ignore[assignment]


class Vintage(BaseModel):
    vintage: int
    date: dt.date
    value: float | None
    """``None`` for a ``withdrawn`` vintage: the date is no longer a publication day."""
    status: str
    methodology_version: str
    inputs_hash: str
    published_at: dt.datetime
    superseded_at: dt.datetime | None


class Vintages(BaseModel):
    code: str
    date: dt.date
    as_of: dt.datetime | None
    vintages: list[Vintage]


class Corrections(BaseModel):
    since: dt.datetime | None
    corrections: list[CorrectionNotice]


class Changes(BaseModel):
    updated_after: dt.datetime
    changes: list[Change]
    next: str | None = Field(description="Query for the next page, when this one is full")


class PriceAt(BaseModel):
    date: dt.date
    price: float


class ExplainedAssessment(BaseModel):
    date: dt.date
    price: float | None
    status: str
    vintage: int
    trades: int
    volume: float | None = Field(description="None below the disclosure minimum")
    high: float | None
    low: float | None
    exchanges: int
    fallback: str
    methodology_version: str
    inputs_hash: str
    published_at: dt.datetime
    trades_used: list[dict[str, Any]] = Field(
        description="The trades the price rests on: every one for an administrator or "
        "auditor key, the key's own for an exchange key, none for anyone else"
    )
    excluded: list[dict[str, Any]] = Field(
        description="The window's excluded trades, with the rule, shown as trades_used"
    )
    source: Literal["rationale", "trades"] = Field(
        description="Where trades_used/excluded come from: the assessment's stored rationale, "
        "or the trades table as it stands"
    )
    rationale: dict[str, Any] | None = Field(
        None,
        description="The rest of the stored rationale: methodology parameters, window, "
        "statistics, sufficiency, fallback detail, counts, trades digest",
    )


class ExplainedConstituent(BaseModel):
    code: str
    weight: float
    level: float
    reference_level: float
    assessment: ExplainedAssessment | None
    reference: PriceAt | None = Field(description="Assessment behind reference_level")
    base: PriceAt | None = Field(description="Assessment on the base date")


class Explanation(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    kind: str
    date: dt.date
    value: float
    status: str
    vintage: int
    methodology_version: str
    inputs_hash: str
    published_at: dt.datetime
    formula: str | None
    base_date: dt.date
    base_value: float
    reference_date: dt.date | None
    reference_value: float | None
    normalising_constant: float | None
    constituents: list[ExplainedConstituent]
    rationale: dict[str, Any] | None = Field(description="The stored rationale, as published")


class FormulaPoint(BaseModel):
    period: dt.date
    value: float | None


class FormulaAnswer(BaseModel):
    formula: str
    method: str
    commodities: list[str]
    as_of: dt.datetime | None
    points: list[FormulaPoint]
