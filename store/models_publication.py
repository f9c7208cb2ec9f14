"""Publication records: correction notices and the shared per-key request counters."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId


class Correction(Base):
    """A published notice that a final value was restated: old and new value, and why."""

    __tablename__ = "corrections"
    __table_args__ = (
        Index("ix_corrections_published_at", "published_at", "id"),
        Index("ix_corrections_index_id_date", "index_id", "date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    index_id: Mapped[int] = mapped_column(ForeignKey("index_definitions.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    old_vintage: Mapped[int]
    new_vintage: Mapped[int]
    old_value: Mapped[float] = mapped_column(Float)
    new_value: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(1000))
    published_at: Mapped[dt.datetime]


class RateLimitCounter(Base):
    """Requests of one caller (``bucket``) in one fixed window; every worker counts here."""

    __tablename__ = "rate_limit_counters"

    bucket: Mapped[str] = mapped_column(String(96), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class PublicationState(Base):
    """One row whose ``version`` goes up with every transaction that publishes vintages.

    Readers compare it (with the tables' highest ids) to tell whether anything they answered
    could have changed: it is what conditional requests and the live stream key on.
    """

    __tablename__ = "publication_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime | None]
