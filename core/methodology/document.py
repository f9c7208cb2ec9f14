"""One methodology version as published: every parameter that can change a published value,
validated when the document is read."""

from __future__ import annotations

import datetime as dt
import tomllib
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import MethodologyError
from core.methodology.reference import CommodityParameters, IndexFamily, check_weights


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CalendarRules(_Frozen):
    """Publication days. ``mainland``: the ISO ``weekdays`` that are not mainland public
    holidays (weekend make-up working days are not publication days); ``weekdays``: the
    ``weekdays`` alone. Either way minus ``holidays``, plus ``working_days``."""

    timezone: str = "Asia/Shanghai"
    rule: Literal["weekdays", "mainland"] = "weekdays"
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)
    holidays: frozenset[dt.date] = frozenset()
    working_days: frozenset[dt.date] = frozenset()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("weekdays")
    @classmethod
    def _iso_weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(not 1 <= d <= 7 for d in value):
            raise ValueError("weekdays must be ISO weekday numbers 1 (Monday) to 7 (Sunday)")
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> CalendarRules:
        both = self.holidays & self.working_days
        if both:
            raise ValueError(f"days listed both as holiday and working day: {sorted(both)}")
        return self


Exclusion = Literal["sigma", "mad"]


class CommodityRule(_Frozen):
    """The assessment parameters of one commodity, defaults resolved."""

    code: str
    cutoff: dt.time
    min_lot: float
    min_volume: float
    min_trades: int
    min_exchanges: int
    max_exchange_share: float
    exclusion: Exclusion
    k: float
    mad_scale: float
    related: tuple[str, ...]
    scale_floor: float = 0.0
    exclude_affiliated: bool = False
    max_participant_share: float = 1.0


class CommodityOverride(_Frozen):
    cutoff: dt.time | None = None
    min_lot: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    min_volume: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    min_trades: int | None = Field(default=None, ge=1)
    min_exchanges: int | None = Field(default=None, ge=1)
    max_exchange_share: float | None = Field(default=None, gt=0, le=1)
    exclusion: Exclusion | None = None
    sigma_k: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    mad_k: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    related: tuple[str, ...] = ()


class AssessmentRules(_Frozen):
    cutoff: dt.time = dt.time(15, 0)
    exclusion: Exclusion = "sigma"
    sigma_k: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    mad_k: float = Field(default=3.0, gt=0, allow_inf_nan=False)
    mad_scale: float = Field(default=1.4826, gt=0, allow_inf_nan=False)
    scale_floor: float = Field(default=0.0, ge=0, lt=1, allow_inf_nan=False)
    """The exclusion's spread is at least this fraction of its centre, so near-identical
    prices exclude nothing."""
    reporting_grace_seconds: int = Field(default=0, ge=0, le=3600)
    """A trade executed in D's window and received up to this long after the cut-off counts
    for D's fixing, which is computed at cut-off + grace."""
    exclude_affiliated: bool = False
    """Trades whose two sides belong to one group (``affiliated``) do not qualify."""
    max_participant_share: float | None = Field(default=None, gt=0, le=1)
    """A window where one participant, as buyer or as seller on one exchange, has more of
    the qualifying volume is insufficient (none: no such test)."""
    min_trades: int = Field(default=3, ge=1)
    min_exchanges: int = Field(default=2, ge=1)
    max_exchange_share: float = Field(default=0.8, gt=0, le=1)
    stale_days: int = Field(default=5, ge=0)
    related_max_age_days: int = Field(default=10, ge=1)
    listed_trades_limit: int = Field(default=1000, ge=1)
    commodities: dict[str, CommodityOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _related_known(self) -> AssessmentRules:
        for code, rule in self.commodities.items():
            for other in rule.related:
                if other == code:
                    raise ValueError(f"commodity {code} names itself as related")
        return self

    def rule(self, code: str) -> CommodityRule:
        own = self.commodities.get(code, CommodityOverride())
        exclusion = own.exclusion or self.exclusion
        sigma_k = own.sigma_k or self.sigma_k
        mad_k = own.mad_k or self.mad_k
        return CommodityRule(
            code=code,
            cutoff=own.cutoff or self.cutoff,
            min_lot=own.min_lot,
            min_volume=own.min_volume,
            min_trades=own.min_trades or self.min_trades,
            min_exchanges=own.min_exchanges or self.min_exchanges,
            max_exchange_share=own.max_exchange_share or self.max_exchange_share,
            exclusion=exclusion,
            k=sigma_k if exclusion == "sigma" else mad_k,
            mad_scale=self.mad_scale,
            related=own.related,
            scale_floor=self.scale_floor,
            exclude_affiliated=self.exclude_affiliated,
            max_participant_share=self.max_participant_share or 1.0,
        )


def _month_day(value: str) -> str:
    try:
        dt.date(2024, int(value[:2]), int(value[3:]))  # 2024: a leap year accepts 02-29
    except (ValueError, IndexError):
        raise ValueError(f"{value!r} is not a month-day MM-DD") from None
    if len(value) != 5 or value[2] != "-":
        raise ValueError(f"{value!r} is not a month-day MM-DD")
    return value


class RebalanceRules(_Frozen):
    announcement: str = "11-01"
    effective: str = "01-01"
    traded_value_share: str = "2/3"
    production_value_share: str = "1/3"
    commodity_cap: float = Field(default=0.15, gt=0, le=1, allow_inf_nan=False)
    sector_cap: float = Field(default=0.40, gt=0, le=1, allow_inf_nan=False)
    floor: float = Field(default=0.02, ge=0, lt=1, allow_inf_nan=False)
    fx_to_cny: dict[str, float] = Field(default_factory=lambda: {"CNY": 1.0})
    traded_value: Literal["all_trades", "qualifying"] = "all_trades"
    """Which trades make the traded value: every stored trade, or only those that qualified
    for their window's assessment (lot, exclusion and arm's-length rules)."""
    data_year_cut: Literal["midnight", "cutoff"] = "midnight"
    """Where the data year begins and ends: local midnight, or the fixing cut-off."""
    phase_in_rebalances: int = Field(default=0, ge=0, le=10)
    """A commodity new to the weights reaches its computed weight over this many rebalances
    (0: at once)."""

    _announcement = field_validator("announcement", "effective")(_month_day)

    @field_validator("traded_value_share", "production_value_share")
    @classmethod
    def _fraction(cls, value: str) -> str:
        try:
            share = Fraction(value)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{value!r} is not a fraction such as 2/3") from None
        if not 0 <= share <= 1:
            raise ValueError(f"{value} must lie between 0 and 1")
        return value

    @field_validator("fx_to_cny")
    @classmethod
    def _positive_rates(cls, value: dict[str, float]) -> dict[str, float]:
        for currency, rate in value.items():
            if not (rate > 0 and rate < float("inf")):
                raise ValueError(f"rate for {currency} must be finite and > 0")
        return value

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> RebalanceRules:
        total = Fraction(self.traded_value_share) + Fraction(self.production_value_share)
        if total != 1:
            raise ValueError(f"traded and production value shares sum to {total}, not 1")
        if self.floor > self.commodity_cap:
            raise ValueError("floor exceeds commodity_cap")
        return self

    @property
    def traded_share(self) -> float:
        return float(Fraction(self.traded_value_share))

    def announcement_date(self, year: int) -> dt.date:
        """Announcement of the weights effective in ``year`` (it falls in the year before)."""
        return dt.date(year - 1, int(self.announcement[:2]), int(self.announcement[3:]))

    def effective_date(self, year: int) -> dt.date:
        return dt.date(year, int(self.effective[:2]), int(self.effective[3:]))


class IntradayRules(_Frozen):
    interval_seconds: int = Field(default=60, ge=1)


class PublicationRules(_Frozen):
    correction_window_days: int = Field(default=5, ge=1)
    """Publication days, ending today, whose published values may still be restated; an
    older value is frozen (only an operator's forced restatement changes it)."""
    disclosure_min_trades: int = Field(default=5, ge=1)
    disclosure_min_exchanges: int = Field(default=3, ge=1)
    """An explanation shows a window's volumes by rule and its price range only from this
    many trades and exchanges (statistical disclosure control)."""
    review_threshold: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """A day-on-day relative move beyond this flags the value ``review`` and raises an alert
    (publication is not held back); none: no such flag."""


ChangeReason = Literal["methodology_change", "calendar_correction"]


class Methodology(_Frozen):
    version: str = Field(pattern=r"^[0-9A-Za-z.\-]{1,32}$")
    effective_from: dt.date
    index_family: IndexFamily | None = None
    """The base date and base value (versions before 2025.2 left them to the catalogue)."""
    commodities: dict[str, CommodityParameters] = Field(default_factory=dict)
    """Each commodity's weight, production value, price band and normalisation."""
    supersedes: str | None = None
    """The version this one replaces from ``effective_from`` on."""
    change: ChangeReason | None = None
    """Why values published under ``supersedes`` are restated (their correction notices say it)."""
    changelog: tuple[str, ...] = ()
    """What this version changes, one entry per rule, as published."""
    calendar: CalendarRules = CalendarRules()
    assessment: AssessmentRules = AssessmentRules()
    rebalance: RebalanceRules = RebalanceRules()
    intraday: IntradayRules = IntradayRules()
    publication: PublicationRules = PublicationRules()

    @model_validator(mode="after")
    def _reference_consistent(self) -> Methodology:
        check_weights(self.commodities)
        return self

    def commodity(self, code: str) -> CommodityParameters:
        """The parameters of commodity ``code``; a :class:`MethodologyError` names it when
        this version has none."""
        try:
            return self.commodities[code]
        except KeyError:
            raise MethodologyError(
                f"methodology {self.version} has no parameters for commodity {code!r} "
                f"(it lists {', '.join(sorted(self.commodities)) or 'none'})",
                version=self.version,
                commodity=code,
            ) from None

    @property
    def family(self) -> IndexFamily:
        if self.index_family is None:
            raise MethodologyError(
                f"methodology {self.version} states no index family (base date and value)",
                version=self.version,
            )
        return self.index_family

    def parameters(self, code: str) -> dict:
        """The assessment parameters of ``code`` as published in a rationale."""
        rule = self.assessment.rule(code)
        return {
            "cutoff": rule.cutoff.isoformat(),
            "timezone": self.calendar.timezone,
            "min_lot": rule.min_lot,
            "exclusion": rule.exclusion,
            "k": rule.k,
            **({"mad_scale": rule.mad_scale} if rule.exclusion == "mad" else {}),
            **({"scale_floor": rule.scale_floor} if rule.scale_floor else {}),
            **({"exclude_affiliated": True} if rule.exclude_affiliated else {}),
            **(
                {"max_participant_share": rule.max_participant_share}
                if rule.max_participant_share < 1.0
                else {}
            ),
            **(
                {"reporting_grace_seconds": self.assessment.reporting_grace_seconds}
                if self.assessment.reporting_grace_seconds
                else {}
            ),
            "min_trades": rule.min_trades,
            "min_volume": rule.min_volume,
            "min_exchanges": rule.min_exchanges,
            "max_exchange_share": rule.max_exchange_share,
            "stale_days": self.assessment.stale_days,
            "related": list(rule.related),
        }


def parse_methodology(text: str, source: str = "<string>") -> Methodology:
    """A version from its TOML document (or the JSON form of one)."""
    try:
        if text.lstrip().startswith("{"):
            return Methodology.model_validate_json(text)
        return Methodology.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise MethodologyError(f"methodology {source} is invalid: {exc}", source=source) from exc
