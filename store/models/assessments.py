"""Commodities and their daily price assessments, each with its rationale."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.models.vintages import Vintage


class Commodity(Base):
    __tablename__ = "commodities"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    sector: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    listed_on: Mapped[dt.date] = mapped_column(Date)
    spec: Mapped[dict[str, Any]]


class Assessment(Vintage, Base):
    """A commodity's daily price assessment: VWAP of the day's qualifying trades.

    ``fallback`` says what the price rests on: ``none`` (the day's own qualifying trades),
    ``related`` (a related commodity's assessment scaled by their last common spread),
    ``stale`` (the last assessment carried forward) or ``suspended`` (no price: ``price``,
    ``high`` and ``low`` are NULL). ``trades``, ``volume``, ``high``, ``low`` and
    ``exchanges`` describe the trades behind the price (the related commodity's for
    ``related``; the day's own, insufficient, qualifying trades for ``stale``/``suspended``).
    ``rationale`` states the inputs, the exclusions and the rules applied.
    """

    __tablename__ = "assessments"
    __table_args__ = (
        UniqueConstraint("commodity_id", "date", "vintage"),
        Index(
            "ix_assessments_current",
            "commodity_id",
            "date",
            unique=True,
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
        Index("ix_assessments_commodity_id_id", "commodity_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    commodity_id: Mapped[int] = mapped_column(ForeignKey("commodities.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    price: Mapped[float | None] = mapped_column(Float)
    trades: Mapped[int]
    volume: Mapped[float] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    low: Mapped[float | None] = mapped_column(Float)
    exchanges: Mapped[int]
    fallback: Mapped[str] = mapped_column(String(16), default="none")
    rationale: Mapped[dict[str, Any] | None]
