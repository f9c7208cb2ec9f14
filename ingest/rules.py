"""Per-commodity feed rules as small lookup tables for Polars expressions: the catalogue's
specifications, and the methodology's price bands and normalisation.

Every rule is a short array indexed by the row's commodity (and unit, currency or quality
value): a lookup is a ``gather`` from that array, not a join, so a wide batch is never
copied for it. Built once per batch from the catalogue and the database's commodity ids;
the FX table is a dense (day, currency) array built the same way (:class:`FxTable`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.catalogue import Catalogue, Commodity
from core.fields import NUMERIC_QUALITY_FIELDS, QUALITY_FIELDS
from core.methodology.reference import Normalisation
from store import models

COMMODITY_INDEX = "commodity_index"
EPOCH = dt.date(1970, 1, 1)


def lookup(values: Sequence, dtype: pl.DataType, index: pl.Expr) -> pl.Expr:
    """``values[index]`` per row; null where the index is null."""
    return pl.lit(pl.Series(values=list(values), dtype=dtype)).gather(index)


def position(expr: pl.Expr, names: Sequence) -> pl.Expr:
    """The position of each row's value in ``names``, null when absent."""
    if names and all(isinstance(name, str) for name in names):
        # Text keys: an enum's physical code is the position, and the cast is the cheaper
        # lookup.
        return expr.cast(pl.Enum(list(names)), strict=False).to_physical().cast(pl.UInt32)
    return expr.replace_strict(
        {name: i for i, name in enumerate(names)}, default=None, return_dtype=pl.UInt32
    )


@dataclass(frozen=True)
class PairTable:
    """A value per (commodity, key): ``values[commodity × len(keys) + key]``."""

    keys: tuple
    values: tuple
    dtype: pl.DataType

    def at(self, key: pl.Expr) -> pl.Expr:
        width = len(self.keys)
        if width == 0:
            return pl.lit(None, dtype=self.dtype)
        pair = pl.col(COMMODITY_INDEX).cast(pl.UInt32) * width + position(key, self.keys)
        return lookup(self.values, self.dtype, pair)


@dataclass(frozen=True)
class FeedRules:
    calendar: Calendar
    codes: tuple[str, ...]
    commodity_ids: tuple[int | None, ...]
    scalars: dict[str, tuple[tuple, pl.DataType]]
    units: PairTable
    wet: PairTable
    currencies: PairTable
    ranges: dict[str, tuple[tuple, tuple]] = field(default_factory=dict)
    penalties: dict[str, tuple[tuple, tuple, tuple]] = field(default_factory=dict)
    pro_rata: dict[str, tuple] = field(default_factory=dict)
    differentials: dict[str, tuple[PairTable, tuple]] = field(default_factory=dict)

    @property
    def ids(self) -> dict[str, int]:
        return {c: i for c, i in zip(self.codes, self.commodity_ids, strict=True) if i is not None}

    def window_day(self, commodity_id: int, instant: dt.datetime) -> dt.date:
        """The publication day whose assessment window (of the commodity) holds ``instant``."""
        codes = {i: c for c, i in self.ids.items()}
        return self.calendar.window_day(instant, codes.get(commodity_id))

    def window(self, commodity_id: int, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        codes = {i: c for c, i in self.ids.items()}
        return self.calendar.window(day, codes.get(commodity_id))

    def commodity_index(self) -> pl.Expr:
        return position(pl.col("commodity"), self.codes).alias(COMMODITY_INDEX)

    def per_commodity(self, values: Sequence, dtype: pl.DataType) -> pl.Expr:
        return lookup(values, dtype, pl.col(COMMODITY_INDEX))

    def scalar(self, name: str) -> pl.Expr:
        values, dtype = self.scalars[name]
        return self.per_commodity(values, dtype)


def _ranges(c: Commodity, n: Normalisation) -> dict[str, tuple[float, float]]:
    """The normalisation's ranges, plus ``<attribute>_range`` entries of the spec."""
    ranges = {}
    for attribute in NUMERIC_QUALITY_FIELDS:
        spec_range = c.spec.get(f"{attribute}_range")
        if spec_range is not None:
            ranges[attribute] = (float(spec_range[0]), float(spec_range[1]))
    ranges.update(n.ranges)
    return ranges


def _pairs(
    commodities: Sequence[Commodity], keys: Sequence, value_of, dtype: pl.DataType
) -> PairTable:
    values = tuple(value_of(c, k) for c in commodities for k in keys)
    return PairTable(tuple(keys), values, dtype)


def differential_key(attribute: str, value: object) -> object:
    return float(value) if attribute in NUMERIC_QUALITY_FIELDS else str(value)


def build_rules(catalogue: Catalogue, ids: dict[str, int], calendar: Calendar) -> FeedRules:
    cs = catalogue.commodities
    params = {c.code: calendar.methodology.commodity(c.code) for c in cs}
    n = {code: p.normalisation for code, p in params.items()}
    unit_names = sorted({c.unit for c in cs} | {u for c in cs for u in n[c.code].units})
    currency_names = sorted(
        {c.currency for c in cs} | {x for c in cs for x in n[c.code].currencies}
    )

    def factor(c: Commodity, unit: str) -> float | None:
        return 1.0 if unit == c.unit else n[c.code].units.get(unit)

    scalars = {
        "spec_unit": (tuple(c.unit for c in cs), pl.String()),
        "spec_currency": (tuple(c.currency for c in cs), pl.String()),
        "band_low": (tuple(params[c.code].price_band[0] for c in cs), pl.Float64()),
        "band_high": (tuple(params[c.code].price_band[1] for c in cs), pl.Float64()),
        "allow_negative": (tuple(n[c.code].allow_negative_prices for c in cs), pl.Boolean()),
        "listed_on": (tuple(c.listed_on for c in cs), pl.Date()),
        "cutoff": (tuple(calendar.cutoff_time(c.code) for c in cs), pl.Time()),
    }
    rules = FeedRules(
        calendar=calendar,
        codes=tuple(c.code for c in cs),
        commodity_ids=tuple(ids.get(c.code) for c in cs),
        scalars=scalars,
        units=_pairs(cs, unit_names, factor, pl.Float64()),
        wet=_pairs(
            cs,
            unit_names,
            lambda c, u: (u in n[c.code].wet_units) if factor(c, u) else None,
            pl.Boolean(),
        ),
        currencies=_pairs(
            cs,
            currency_names,
            lambda c, x: x == c.currency or x in n[c.code].currencies,
            pl.Boolean(),
        ),
    )
    for attribute in NUMERIC_QUALITY_FIELDS:
        ranges = [_ranges(c, n[c.code]).get(attribute) for c in cs]
        if any(ranges):
            rules.ranges[attribute] = (
                tuple(r[0] if r else None for r in ranges),
                tuple(r[1] if r else None for r in ranges),
            )
        penalties = [
            next((p for p in n[c.code].penalties if p.attribute == attribute), None) for c in cs
        ]
        if any(penalties):
            rules.penalties[attribute] = tuple(
                tuple(getattr(p, name) if p else None for p in penalties)
                for name in ("above", "per_unit", "step")
            )
        bases = [
            n[c.code].pro_rata.basis
            if n[c.code].pro_rata and n[c.code].pro_rata.attribute == attribute
            else None
            for c in cs
        ]
        if any(bases):
            rules.pro_rata[attribute] = tuple(bases)
    for attribute in QUALITY_FIELDS:
        tables = {
            c.code: {
                differential_key(attribute, key): premium
                for key, premium in n[c.code].differentials.get(attribute, {}).items()
            }
            for c in cs
        }
        if any(tables.values()):
            keys = sorted({k for table in tables.values() for k in table})
            premiums = _pairs(cs, keys, lambda c, k, t=tables: t[c.code].get(k), pl.Float64())
            configured = tuple(attribute in n[c.code].differentials for c in cs)
            rules.differentials[attribute] = (premiums, configured)
    return rules


def feed_rules(session: Session, catalogue: Catalogue, calendar: Calendar) -> FeedRules:
    ids = dict(session.execute(select(models.Commodity.code, models.Commodity.id)).all())
    return build_rules(catalogue, ids, calendar)


@dataclass(frozen=True)
class FxTable:
    """CNY per unit of each currency on each day from ``first_day`` (days since 1970-01-01),
    as a dense array ``rates[(day − first_day) × len(currencies) + currency]``."""

    first_day: int
    days: int
    currencies: tuple[str, ...]
    rates: tuple[float | None, ...]

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[dt.date, str, float]]) -> FxTable:
        if not rows:
            return cls(0, 0, (), ())
        currencies = tuple(sorted({c for _, c, _ in rows}))
        first = min((d - EPOCH).days for d, _, _ in rows)
        last = max((d - EPOCH).days for d, _, _ in rows)
        width = len(currencies)
        where = {c: i for i, c in enumerate(currencies)}
        rates: list[float | None] = [None] * ((last - first + 1) * width)
        for day, currency, rate in rows:
            rates[((day - EPOCH).days - first) * width + where[currency]] = rate
        return cls(first, last - first + 1, currencies, tuple(rates))

    def cny_per_unit(self, currency: pl.Expr, day: pl.Expr) -> pl.Expr:
        """The rate for each row's currency on its day: 1 for CNY, null when unknown."""
        if not self.currencies:
            return pl.when(currency == "CNY").then(pl.lit(1.0))
        offset = day.cast(pl.Int32) - self.first_day
        inside = (offset >= 0) & (offset < self.days)
        index = pl.when(inside).then(
            offset.cast(pl.UInt32, strict=False) * len(self.currencies)
            + position(currency, self.currencies)
        )
        return (
            pl.when(currency == "CNY")
            .then(pl.lit(1.0))
            .otherwise(lookup(self.rates, pl.Float64(), index))
        )
