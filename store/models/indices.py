"""Indices: definitions, constituents and weight sets, normalising constants, published
values, intraday values and each day's open, high, low and close.

A weight set is computed on its announcement date (status ``announced``) and becomes the
index constituents' weights on its effective date (status ``effective``). A normalising
constant is the level an index carries into a new weight period: the index value on the
last index day before the period begins."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId, utcnow
from store.models.vintages import Vintage


class IndexDefinition(Base):
    __tablename__ = "index_definitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name_en: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(16))
    base_date: Mapped[dt.date] = mapped_column(Date)
    base_value: Mapped[float] = mapped_column(Float)
    started_on: Mapped[dt.date | None] = mapped_column(Date)
    """The index's own base date, recorded with its first published value (never changed
    after): ``base_date`` when its constituents were assessed then, else the first
    publication day on which they all were."""

    @property
    def first_date(self) -> dt.date:
        """The date the index's level is the base value: its own, or the family's."""
        return self.started_on or self.base_date


class IndexConstituent(Base):
    """A commodity's weight in an index from ``effective_from`` until the next weight set."""

    __tablename__ = "index_constituents"
    __table_args__ = (UniqueConstraint("index_id", "effective_from", "commodity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    index_id: Mapped[int] = mapped_column(ForeignKey("index_definitions.id"))
    commodity_id: Mapped[int] = mapped_column(ForeignKey("commodities.id"))
    effective_from: Mapped[dt.date] = mapped_column(Date)
    weight: Mapped[float] = mapped_column(Float)


class WeightSet(Base):
    __tablename__ = "weight_sets"
    __table_args__ = (UniqueConstraint("effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    methodology_version: Mapped[str] = mapped_column(String(32))
    data_from: Mapped[dt.date] = mapped_column(Date)
    data_to: Mapped[dt.date] = mapped_column(Date)
    parameters: Mapped[dict[str, Any]]
    announced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[dt.datetime | None]


class WeightSetMember(Base):
    """One commodity's weight in the composite: its inputs, its target and its final weight."""

    __tablename__ = "weight_set_members"
    __table_args__ = (UniqueConstraint("weight_set_id", "commodity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    weight_set_id: Mapped[int] = mapped_column(ForeignKey("weight_sets.id"))
    commodity_id: Mapped[int] = mapped_column(ForeignKey("commodities.id"))
    traded_value: Mapped[float] = mapped_column(Float)
    production_value: Mapped[float] = mapped_column(Float)
    traded_share: Mapped[float] = mapped_column(Float)
    production_share: Mapped[float] = mapped_column(Float)
    target: Mapped[float] = mapped_column(Float)
    weight: Mapped[float] = mapped_column(Float)


class NormalisingConstant(Base):
    """``value`` multiplies Σ weight × level / reference level from ``effective_from`` on.

    Never edited: a recomputed constant is a new ``vintage``, published at ``computed_at``;
    the one it replaces keeps its value and is stamped ``superseded_at``.
    """

    __tablename__ = "normalising_constants"
    __table_args__ = (
        UniqueConstraint("index_id", "effective_from", "vintage"),
        Index(
            "ix_normalising_constants_current",
            "index_id",
            "effective_from",
            unique=True,
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    index_id: Mapped[int] = mapped_column(ForeignKey("index_definitions.id"))
    effective_from: Mapped[dt.date] = mapped_column(Date)
    reference_date: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float)
    methodology_version: Mapped[str] = mapped_column(String(32))
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    vintage: Mapped[int] = mapped_column(default=1, server_default="1")
    superseded_at: Mapped[dt.datetime | None]


class IndexValue(Vintage, Base):
    __tablename__ = "index_values"
    __table_args__ = (
        UniqueConstraint("index_id", "date", "vintage"),
        Index(
            "ix_index_values_current",
            "index_id",
            "date",
            unique=True,
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
        Index("ix_index_values_index_id_id", "index_id", "id"),
        Index("ix_index_values_published_at", "published_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    index_id: Mapped[int] = mapped_column(ForeignKey("index_definitions.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[float | None] = mapped_column(Float)
    rationale: Mapped[dict[str, Any] | None]


class IntradayIndexValue(Base):
    """A provisional index value as computed at ``observed_at`` from the trades so far."""

    __tablename__ = "intraday_index_values"
    __table_args__ = (
        UniqueConstraint("index_id", "observed_at"),
        Index("ix_intraday_index_values_index_id_date", "index_id", "date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    index_id: Mapped[int] = mapped_column(ForeignKey("index_definitions.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    observed_at: Mapped[dt.datetime]
    value: Mapped[float] = mapped_column(Float)


class IndexDailyOHLC(Base):
    """Open, high, low and close of an index's day: its intraday values and its fixing."""

    __tablename__ = "index_daily_ohlc"
    __table_args__ = (UniqueConstraint("index_id", "date"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    index_id: Mapped[int] = mapped_column(ForeignKey("index_definitions.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    observations: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
