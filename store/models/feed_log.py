"""Batches queued on the feed log: what each became once a consumer took it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, utcnow

QUEUED, STORED, DEAD = "queued", "stored", "dead"


class QueuedBatch(Base):
    """One batch appended to the feed log, named by the id its 202 answer gave.

    ``dedupe_key`` (``key:<Idempotency-Key>`` or ``sha256:<request hash>``) makes a re-sent
    batch the same batch until ``expires_at``; it is cleared after that. ``status`` is
    ``queued`` until a consumer stores the batch (``stored``: ``answer`` is what a direct
    push would have answered, ``ingest_batch_id`` the batch stored) or refuses it for a
    reason of its data (``dead``: ``reason``).
    """

    __tablename__ = "queued_batches"
    __table_args__ = (
        UniqueConstraint("exchange_id", "dedupe_key"),
        Index("ix_queued_batches_status", "status", "settled_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("exchanges.id"))
    dedupe_key: Mapped[str | None] = mapped_column(String(300))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8), default=QUEUED)
    queued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]
    settled_at: Mapped[dt.datetime | None]
    ingest_batch_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_batches.id"))
    answer: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
