"""Tables of the exchange-feed area: FX rates, idempotency records, trade revisions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId
from store.types import utcnow


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
