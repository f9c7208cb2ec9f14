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
    flags: list[str] = Field(default_factory=list, description="Such as review")


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
    value: float | None = Field(
        description="Null where an assessment is suspended (no price) and where a transform "
        "has no earlier value to compare with (the first point; the first year of `yoy`)"
    )
    status: str
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    flags: list[str] = Field(
        default_factory=list,
        description="review: the day-on-day move exceeded the methodology's review threshold",
    )


class AssessmentPoint(SeriesPoint):
    trades: int
    volume: float
    fallback: str


class SeriesMetadata(BaseModel):
    """What describes a series; the same fields are the JSON series' envelope, the schema
    metadata of its Parquet and Arrow answers (``bcpi:<field>``, as text) and what a CSV
    answer's ``Link: <…>; rel="describedby"`` points to."""

    code: str
    name_en: str
    name_zh: str
    unit: str = Field(description="`points` for an index; a commodity's benchmark unit")
    currency: str | None = Field(description="A commodity's price currency; none for an index")
    base_date: dt.date | None = Field(
        description="The day an index is its base value; none for a commodity's prices"
    )
    base_value: float | None
    methodology_version: str | None = Field(
        description="The methodology version of the newest value in the requested range "
        "(`start`–`end`, as published at `as_of`), whatever `limit` and `order` keep; the "
        "version of each date is on `/vintages` and `/explain`. None when there is no value"
    )
    frequency: str
    transform: str
    as_of: dt.datetime | None


class Series(SeriesMetadata):
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
    flags: list[str] = Field(default_factory=list)


class Vintages(BaseModel):
    code: str
    date: dt.date
    as_of: dt.datetime | None
    vintages: list[Vintage]


class AlertOut(BaseModel):
    """A value whose day-on-day move exceeded the review threshold; it was published."""

    kind: Literal["index", "assessment"]
    code: str
    date: dt.date
    vintage: int
    value: float
    previous_date: dt.date
    previous_value: float
    move: float = Field(description="value / previous_value - 1")
    threshold: float
    methodology_version: str
    raised_at: dt.datetime


class Alerts(BaseModel):
    since: dt.datetime | None
    alerts: list[AlertOut]


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
    flags: list[str] = Field(default_factory=list)
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
    flags: list[str] = Field(default_factory=list)
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


class FormulaLeftOut(BaseModel):
    period: dt.date
    commodity: str
    reason: str


class FormulaAnswer(BaseModel):
    formula: str
    method: str
    window: int | None = Field(None, description="Multilateral window, in periods")
    splice: str | None = Field(None, description="How the multilateral index was extended")
    commodities: list[str]
    as_of: dt.datetime | None
    left_out: list[FormulaLeftOut] = Field(
        default_factory=list,
        description="Commodity-days left out of the computation, and why (also counted in "
        "the X-Left-Out header of every format)",
    )
    points: list[FormulaPoint]


class WeightCaps(BaseModel):
    commodity_cap: float = Field(description="The most one commodity may weigh")
    sector_cap: float = Field(description="The most one sector may weigh")
    floor: float = Field(description="The least every commodity weighs")


class WeightMember(BaseModel):
    code: str
    sector: str
    weight: float = Field(description="Its weight in this index (a sector's members sum to 1)")
    composite_weight: float | None = Field(
        None, description="Its weight in the composite, as announced"
    )
    traded_value: float | None = Field(None, description="Over the data year, in CNY")
    production_value: float | None = Field(None, description="The methodology's, CNY bn")
    target: float | None = Field(
        None, description="traded-value share × its share + production-value share × its share"
    )
    computed_weight: float | None = Field(
        None, description="After the caps and the floor, before any phase-in"
    )
    phase_in: str | None = Field(
        None, description="k/N: phased in, at the k-th of N rebalances (k/N of computed_weight)"
    )


class WeightReplacement(BaseModel):
    """The announcement this one replaced (its weights, and why)."""

    announced_at: dt.datetime
    methodology_version: str
    reason: str | None
    weights: dict[str, float]


class WeightSetAnswer(BaseModel):
    code: str
    effective: dt.date = Field(description="The date asked about")
    effective_from: dt.date = Field(description="The date these weights take effect")
    status: Literal["announced", "effective", "methodology"] = Field(
        description="announced: computed by the rebalance, not yet applied; effective: "
        "applied; methodology: the methodology's own weights (the base date's, or a join's)"
    )
    weight_set: int | None = Field(None, description="The rebalance's weight set")
    announcement: int | None = Field(
        None, description="1 for the first announcement of the date, 2 for its replacement, …"
    )
    methodology_version: str | None = None
    announced_at: dt.datetime | None = None
    applied_at: dt.datetime | None = None
    data_from: dt.date | None = Field(None, description="First day of the data year")
    data_to: dt.date | None = Field(None, description="Last day of the data year")
    traded_value: Literal["all_trades", "qualifying"] | None = None
    data_year_cut: Literal["midnight", "cutoff"] | None = None
    phase_in_rebalances: int | None = None
    caps: WeightCaps | None = None
    replaces: WeightReplacement | None = None
    members: list[WeightMember]


class BacktestIndexOut(BaseModel):
    """One index in a backtest, beside its published values."""

    index: str
    days_compared: int = Field(description="Days with a value on both sides")
    days_differing: int = Field(
        description="Days whose values are not bit for bit equal, or on one side only"
    )
    max_abs_difference: float | None
    max_rel_difference: float | None = Field(description="Of |backtest - published| / published")
    tracking_error: float | None = Field(
        description="Root mean square of the daily ln(backtest / published)"
    )
    exclusions_changed_days: int = Field(
        description="Days on which a constituent's excluded trades (count by rule) changed"
    )
    fallbacks_changed_days: int
    sufficiency_changed_days: int = Field(description="Days with other failed sufficiency tests")
    published_only_days: int
    backtest_only_days: int


class BacktestSummaryOut(BaseModel):
    """A methodology version run over the stored history, on every day of the range."""

    version: str
    start: dt.date
    end: dt.date
    days: int = Field(description="Publication days computed")
    indices: list[BacktestIndexOut]


class MethodologyVersionOut(BaseModel):
    version: str
    effective_from: dt.date
    sha256: str = Field(
        description="SHA-256 of the document as published (GET /v1/methodology/{version})"
    )
    source: str = Field(description="shipped with the software, or adopted by an operator")
    state: str = Field(
        description="in_force as dated, or held: shipped, but it would change published "
        "values, so it waits for an operator's adoption"
    )
    in_force_today: bool
    recorded_at: dt.datetime
    reason: str | None
    changelog: list[str] = Field(description="What the version changes, one entry per rule")


class MethodologyProposalOut(BaseModel):
    """A proposed version under consultation, or the decision that closed it."""

    id: int
    version: str
    effective_from: dt.date
    sha256: str = Field(description="SHA-256 of the proposed document")
    status: Literal["consultation", "adopted", "adopting", "withdrawn"] = Field(
        description="consultation: proposed and not yet decided; adopted; adopting: adopted "
        "once a second operator approves; withdrawn"
    )
    open: bool = Field(description="Open to comment today (from opens to the day before closes)")
    opens: dt.date
    closes: dt.date = Field(description="From this day on it may be adopted")
    decided_at: dt.datetime | None
    decision_reason: str | None
    changelog: list[str]
    backtest: BacktestSummaryOut | None = Field(
        description="The version over the stored history when it was proposed"
    )


class MethodologyOut(BaseModel):
    versions: list[MethodologyVersionOut]
    proposals: list[MethodologyProposalOut]


class BulkPoint(BaseModel):
    """One index's value on one date: a row of the long table."""

    date: dt.date
    code: str
    value: float | None
    status: str
    vintage: int = Field(description="The vintage that stood at as_of (now without it)")
    flags: list[str] = Field(default_factory=list, description="Such as review")


class BulkSeries(BaseModel):
    """Several indices in long form: each index's dates in order, the indices in the order
    of `codes` (every index by code for `*`)."""

    codes: list[str]
    start: dt.date | None
    end: dt.date | None
    as_of: dt.datetime | None
    points: list[BulkPoint]


class VintagePeriod(BaseModel):
    """A vintage with the real-time period in which it was the current one (ALFRED's
    realtime_start and realtime_end, as instants)."""

    date: dt.date
    vintage: int
    value: float | None = Field(description="None for a withdrawn vintage")
    status: Literal["provisional", "final", "restated", "withdrawn"]
    realtime_start: dt.datetime = Field(description="When it was published")
    realtime_end: dt.datetime = Field(
        description="When a later vintage replaced it; 9999-12-31T00:00:00Z while current "
        "(at as_of: a replacement after as_of had not happened yet)"
    )
    methodology_version: str
    inputs_hash: str
    flags: list[str] = Field(default_factory=list)


class VintageRange(BaseModel):
    """Every vintage of every date from start to end, by date and vintage."""

    code: str
    start: dt.date | None
    end: dt.date | None
    as_of: dt.datetime | None
    points: list[VintagePeriod]
