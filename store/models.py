"""Typed SQLAlchemy 2.0 models. Every timestamp is timezone-aware UTC.

Published numbers (assessments, index values) are vintages: a recomputation that changes
a value inserts a new row and stamps the old one's ``superseded_at``; nothing is
overwritten, so what was known at any instant can be answered later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict] = {dt.datetime: UTCDateTime, dict[str, Any]: JSON}


class Exchange(Base):
    __tablename__ = "exchanges"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A credential, stored only as its SHA-256; ``prefix`` identifies it in listings."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("exchanges.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]


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


class IngestBatch(Base):
    """One batch as received: an HTTP push, or one part of a file (``first_row`` on).

    ``sha256`` and ``archive_path`` (relative to the archive directory) name the raw bytes
    kept for replay; a file's parts share the file's archive.
    """

    __tablename__ = "ingest_batches"
    __table_args__ = (Index("ix_ingest_batches_exchange_received", "exchange_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"))
    source: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str | None] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    rows_total: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    held: Mapped[int] = mapped_column(default=0, server_default="0")
    revised: Mapped[int] = mapped_column(default=0, server_default="0")
    rejections_by_reason: Mapped[dict[str, Any] | None]
    archive_path: Mapped[str | None] = mapped_column(String(500))
    format: Mapped[str | None] = mapped_column(String(16))
    first_row: Mapped[int | None] = mapped_column(BigInteger)


class Trade(Base):
    """One concluded trade: as received (``*_raw``) and normalised to the benchmark spec.

    ``status``: ``active`` (used in assessments), ``held`` (``hold_reason`` says what is
    missing; ``price`` is null until then) or ``cancelled``. ``adjustments`` records each
    normalisation step applied; ``revision`` counts amends and cancels (their history is
    in ``trade_revisions``).
    """

    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("exchange_id", "trade_id"),
        Index("ix_trades_commodity_traded_at", "commodity_id", "traded_at"),
        Index("ix_trades_batch_id", "batch_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"))
    trade_id: Mapped[str] = mapped_column(String(64))
    commodity_id: Mapped[int] = mapped_column(ForeignKey("commodities.id"))
    traded_at: Mapped[dt.datetime]
    price_raw: Mapped[float] = mapped_column(Float)
    quantity_raw: Mapped[float] = mapped_column(Float)
    currency_raw: Mapped[str] = mapped_column(String(3))
    unit_raw: Mapped[str] = mapped_column(String(16))
    price: Mapped[float | None] = mapped_column(Float)
    quantity: Mapped[float] = mapped_column(Float)
    attributes: Mapped[dict[str, Any] | None]
    adjustments: Mapped[dict[str, Any] | None]
    seq: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")
    hold_reason: Mapped[str | None] = mapped_column(String(32))
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    batch_id: Mapped[int] = mapped_column(ForeignKey("ingest_batches.id"))


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


class IndexConstituent(Base):
    """A commodity's weight in an index from ``effective_from`` until the next weight set."""

    __tablename__ = "index_constituents"
    __table_args__ = (UniqueConstraint("index_id", "effective_from", "commodity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    index_id: Mapped[int] = mapped_column(ForeignKey("index_definitions.id"))
    commodity_id: Mapped[int] = mapped_column(ForeignKey("commodities.id"))
    effective_from: Mapped[dt.date] = mapped_column(Date)
    weight: Mapped[float] = mapped_column(Float)


class _Vintage:
    """Columns shared by every published number.

    ``status``: ``provisional`` (intraday), ``final`` (the fixing) or ``restated`` (a final
    value recomputed after its inputs changed). ``published_at``/``superseded_at`` bound the
    real-time period in which the vintage was the current one.
    """

    status: Mapped[str] = mapped_column(String(16))
    vintage: Mapped[int] = mapped_column(default=1)
    methodology_version: Mapped[str] = mapped_column(String(32))
    inputs_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    superseded_at: Mapped[dt.datetime | None]


class Assessment(_Vintage, Base):
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


class IndexValue(_Vintage, Base):
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
        Index("ix_index_values_published_at", "published_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    index_id: Mapped[int] = mapped_column(ForeignKey("index_definitions.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float)
    rationale: Mapped[dict[str, Any] | None]


class RestatementMark(Base):
    """A commodity's day whose inputs changed after it may have been published.

    Written by ingest (late trades, cancels, amends); cleared by the restatement sweep
    once the day has been recomputed.
    """

    __tablename__ = "restatement_marks"
    __table_args__ = (Index("ix_restatement_marks_open", "cleared_at", "commodity_id", "date"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    commodity_id: Mapped[int] = mapped_column(ForeignKey("commodities.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(32))
    marked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[dt.datetime | None]
