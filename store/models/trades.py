"""Trades and the batches they came in: revisions, idempotency records, FX rates
and the restatement marks that late changes leave on published days."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId, utcnow


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
    received_at: Mapped[dt.datetime | None]
    """When the server received the trade (its batch), UTC."""
    buyer: Mapped[str | None] = mapped_column(String(64))
    seller: Mapped[str | None] = mapped_column(String(64))
    """The exchange's own pseudonymous participant codes; never served beyond that exchange."""
    affiliated: Mapped[bool | None]
    """Set by the exchange when buyer and seller belong to one group."""


class TradeRevision(Base):
    """A cancel or amend applied to a trade, with the trade as it was before.

    ``content_hash`` identifies the revision message (its action, trade id, values and
    seq): a re-sent revision is a duplicate, never applied twice.
    """

    __tablename__ = "trade_revisions"
    __table_args__ = (
        UniqueConstraint("exchange_id", "trade_id", "content_hash"),
        Index("ix_trade_revisions_batch_id", "batch_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trade_pk: Mapped[int] = mapped_column(ForeignKey("trades.id"))
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"))
    trade_id: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[int] = mapped_column(ForeignKey("ingest_batches.id"))
    action: Mapped[str] = mapped_column(String(8))
    seq: Mapped[int | None] = mapped_column(BigId)
    content_hash: Mapped[str] = mapped_column(String(64))
    previous: Mapped[dict[str, Any]]
    revised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """The stored answer to a push sent with an ``Idempotency-Key``, replayed until expiry.

    ``request_hash`` covers the decoded body, its format and the query, so the same key
    with a different payload is recognised (409).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("exchange_id", "key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_batches.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


class FxRate(Base):
    """How many CNY one unit of ``currency`` was worth on ``date`` (Beijing trading day)."""

    __tablename__ = "fx_rates"
    __table_args__ = (UniqueConstraint("date", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    cny_per_unit: Mapped[float] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(String(500))
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BandRejection(Base):
    """Rows of one batch that the price band refused at ingest, by commodity and the
    publication day whose window they would have fallen in: the day's rationale shows
    them, so no filter acts out of sight."""

    __tablename__ = "band_rejections"
    __table_args__ = (Index("ix_band_rejections_day", "commodity_id", "window_day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("ingest_batches.id"))
    commodity_id: Mapped[int] = mapped_column(ForeignKey("commodities.id"))
    window_day: Mapped[dt.date] = mapped_column(Date)
    band_low: Mapped[float] = mapped_column(Float)
    band_high: Mapped[float] = mapped_column(Float)
    rows: Mapped[int]


class RestatementMark(Base):
    """A commodity's publication day whose inputs changed after it was published.

    Written by ingest: ``reason`` ``late_trade``, ``trade_cancelled`` or ``trade_amended``,
    ``cause`` the batch (and trade) that did it. Cleared by the restatement sweep once the
    day has been recomputed, or, for a day before the correction window, without a change.
    """

    __tablename__ = "restatement_marks"
    __table_args__ = (Index("ix_restatement_marks_open", "cleared_at", "commodity_id", "date"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    commodity_id: Mapped[int] = mapped_column(ForeignKey("commodities.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(32))
    cause: Mapped[str | None] = mapped_column(String(200))
    marked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[dt.datetime | None]
