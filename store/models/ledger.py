"""Audit records: the hash chain over archived batches and the journal of computations.

Every stored ``ingest_batches`` row gets one link of the chain in its own transaction:
``chain_hash = SHA-256(previous chain_hash ‖ the batch's SHA-256 ‖ its metadata)``
(:mod:`store.ledger`). The one ``audit_chain_head`` row holds the last link; its row lock
orders concurrent appends. Every computation that can publish values (the fixing, a
sweep, an intraday run, ``bcpi compute``, the demo) writes one ``audit_computations`` row
with what it ran under, so ``bcpi audit replay`` can run it again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId, utcnow

GENESIS_HASH = "0" * 64
"""The ``previous_hash`` of the first link."""


class AuditLink(Base):
    """One batch's place in the chain: ``seq`` runs 1, 2, 3, … without gaps."""

    __tablename__ = "audit_chain"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    batch_id: Mapped[int] = mapped_column(ForeignKey("ingest_batches.id"), unique=True)
    previous_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditChainHead(Base):
    """The chain's last link (``id`` is always 1; ``seq`` 0 and the genesis hash when empty)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditComputation(Base):
    """One run of :func:`publication.fixing.compute` (``kind`` ``compute``) or of
    :func:`publication.intraday.publish_provisional` (``provisional``), as it ran.

    ``computed_at`` is the run's ``now`` (the ``published_at`` of what it published);
    ``trading_days`` the calendar it used, from the trading day before ``start`` to
    ``end``; ``last_batch_id`` and ``last_fx_id`` the newest batch and FX rate its
    transaction could see; ``reference_hash`` a digest of the commodities, indices and
    weights it read; ``restating`` what published values it could change.
    """

    __tablename__ = "audit_computations"
    __table_args__ = (Index("ix_audit_computations_computed_at", "computed_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date] = mapped_column(Date)
    computed_at: Mapped[dt.datetime]
    methodology_version: Mapped[str] = mapped_column(String(32))
    trading_days: Mapped[list[Any]] = mapped_column(JSON)
    last_batch_id: Mapped[int | None]
    last_fx_id: Mapped[int | None]
    reference_hash: Mapped[str] = mapped_column(String(64))
    restating: Mapped[dict[str, Any] | None]
    """What it could change: ``{"frozen_before": date, "forced": {"keys": [[table, id], …],
    "first", "last"} or null}`` (a replay restates the same)."""
