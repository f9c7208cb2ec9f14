"""The record of each batch queued on the feed log (``queued_batches``): registered by the
API before the batch is appended, settled by the consumer in the transaction that stores
it (``stored``) or once it is refused for a reason of its data (``dead``).

A re-sent batch is the same batch: with an ``Idempotency-Key`` the same key, without one
the same bytes, format and ``atomic`` (its request hash), until ``idempotency_ttl`` has
passed; the same key with another payload is refused as in a direct push.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import IdempotencyConflict, UnknownBatch
from ingest.results import recorded_rejections
from store import models
from store.models import QueuedBatch
from store.models.feed_log import DEAD, QUEUED, STORED

__all__ = ["DEAD", "QUEUED", "STORED"]
MAX_REJECTIONS = 10_000
"""Rejected rows a stored batch's status names (its counts are complete)."""


@dataclass(frozen=True)
class Registered:
    batch_id: str
    status: str
    replayed: bool
    answer: str | None = None
    reason: str | None = None


def dedupe_key(idempotency_key: str | None, request_hash: str) -> str:
    return f"key:{idempotency_key}" if idempotency_key is not None else f"sha256:{request_hash}"


def _found(session: Session, exchange_id: int, key: str) -> QueuedBatch | None:
    return session.scalar(
        select(QueuedBatch).where(
            QueuedBatch.exchange_id == exchange_id, QueuedBatch.dedupe_key == key
        )
    )


def _replayed(record: QueuedBatch, request_hash: str) -> Registered:
    if record.request_hash != request_hash:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for a different payload; use a new key"
        )
    return Registered(record.id, record.status, True, record.answer, record.reason)


def register(
    sessions: sessionmaker[Session],
    exchange_id: int,
    key: str,
    request_hash: str,
    now: dt.datetime,
    ttl: dt.timedelta,
) -> Registered:
    """The batch named by ``key`` for the exchange: the one registered earlier (a re-send),
    else a new one, queued."""
    try:
        with sessions.begin() as session:
            session.execute(  # keys past their time name a batch no longer
                update(QueuedBatch)
                .where(
                    QueuedBatch.exchange_id == exchange_id,
                    QueuedBatch.dedupe_key.is_not(None),
                    QueuedBatch.expires_at <= now,
                )
                .values(dedupe_key=None)
            )
            record = _found(session, exchange_id, key)
            if record is not None:
                return _replayed(record, request_hash)
            record = QueuedBatch(
                id=str(uuid.uuid4()),
                exchange_id=exchange_id,
                dedupe_key=key,
                request_hash=request_hash,
                status=QUEUED,
                queued_at=now,
                expires_at=now + ttl,
            )
            session.add(record)
            session.flush()
            return Registered(record.id, QUEUED, False)
    except IntegrityError:
        with sessions() as session:  # registered concurrently by the same re-send
            record = _found(session, exchange_id, key)
            if record is None:
                raise
            return _replayed(record, request_hash)


def ensure(sessions: sessionmaker[Session], batch_id: str, exchange_id: int | None) -> str:
    """The status of ``batch_id``, recorded as queued if no API registered it (a message
    published to the log by other means)."""
    with sessions() as session:
        status = session.scalar(select(QueuedBatch.status).where(QueuedBatch.id == batch_id))
    if status is not None:
        return status
    try:
        with sessions.begin() as session:
            session.add(QueuedBatch(id=batch_id, exchange_id=exchange_id, status=QUEUED))
    except IntegrityError:
        pass  # another consumer recorded it meanwhile
    return QUEUED


def claim(session: Session, batch_id: str) -> QueuedBatch | None:
    """The batch's record, locked for this transaction (PostgreSQL; SQLite has one writer)
    while it is still queued; ``None`` once another consumer has settled it."""
    record = session.scalar(select(QueuedBatch).where(QueuedBatch.id == batch_id).with_for_update())
    return record if record is not None and record.status == QUEUED else None


def settle_stored(
    record: QueuedBatch, ingest_batch_id: int | None, answer: bytes, now: dt.datetime
) -> None:
    record.status, record.settled_at = STORED, now
    record.ingest_batch_id, record.answer = ingest_batch_id, answer.decode()


def settle_dead(
    sessions: sessionmaker[Session],
    batch_id: str,
    exchange_id: int | None,
    reason: str,
    now: dt.datetime,
) -> None:
    """Record the batch as refused for ``reason`` (unless it was stored meanwhile)."""
    with sessions.begin() as session:
        record = session.get(QueuedBatch, batch_id, with_for_update=True)
        if record is None:
            record = QueuedBatch(id=batch_id, exchange_id=exchange_id, queued_at=now)
            session.add(record)
        elif record.status == STORED:
            return
        record.status, record.settled_at, record.reason = DEAD, now, reason


@dataclass(frozen=True)
class BatchStatus:
    """A queued batch as it stands: ``queued``, ``stored`` (``result``: the answer a direct
    push would have given) or ``dead`` (``reason``: why it was refused)."""

    batch_id: str
    status: str
    exchange: str | None
    queued_at: dt.datetime | None
    settled_at: dt.datetime | None
    reason: str | None
    result: dict[str, Any] | None


def batch_status(session: Session, batch_id: str, exchange_id: int | None) -> BatchStatus:
    """``batch_id``'s status; only the exchange ``exchange_id``'s when given
    (:class:`UnknownBatch` otherwise, as for a batch that does not exist)."""
    row = session.execute(
        select(QueuedBatch, models.Exchange.code)
        .outerjoin(models.Exchange, models.Exchange.id == QueuedBatch.exchange_id)
        .where(QueuedBatch.id == batch_id)
    ).first()
    if row is None or (exchange_id is not None and row[0].exchange_id != exchange_id):
        raise UnknownBatch(batch_id)
    record, code = row
    return BatchStatus(
        batch_id=record.id,
        status=record.status,
        exchange=code,
        queued_at=record.queued_at,
        settled_at=record.settled_at,
        reason=record.reason,
        result=json.loads(record.answer) if record.answer else None,
    )


def stored_batch_status(
    session: Session, batch_id: int, exchange_id: int | None, archive_dir: Path
) -> BatchStatus:
    """A batch stored directly (a push without the feed log, or a part of a file), named by
    the integer id its answer gave: its counts as recorded with it."""
    batch = session.get(models.IngestBatch, batch_id)
    if batch is None or (exchange_id is not None and batch.exchange_id != exchange_id):
        raise UnknownBatch(str(batch_id))
    revised = dict(
        session.execute(
            select(models.TradeRevision.action, func.count())
            .where(models.TradeRevision.batch_id == batch_id)
            .group_by(models.TradeRevision.action)
        ).all()
    )
    kept = recorded_rejections(archive_dir, batch, MAX_REJECTIONS) if batch.rejected else []
    result = {
        "batch_id": batch.id,
        "accepted": batch.accepted,
        "duplicates": batch.duplicates,
        "rejected": batch.rejected,
        "held": batch.held,
        "cancelled": revised.get("cancel", 0),
        "amended": revised.get("amend", 0),
        "rejections": [r.__dict__ for r in kept] if kept is not None else None,
        "by_reason": batch.rejections_by_reason or {},
        "batch_ids": [batch.id],
        "rows": batch.rows_total,
    }
    return BatchStatus(
        batch_id=str(batch.id),
        status=STORED,
        exchange=session.get(models.Exchange, batch.exchange_id).code,
        queued_at=None,
        settled_at=batch.received_at,
        reason=None,
        result=result,
    )


def dead_counts(session: Session, start: dt.datetime, stop: dt.datetime) -> dict[int | None, int]:
    """Batches refused between ``start`` and ``stop``, by exchange id (``None``: messages
    that named no known exchange)."""
    rows = session.execute(
        select(QueuedBatch.exchange_id, func.count())
        .where(
            QueuedBatch.status == DEAD,
            QueuedBatch.settled_at >= start,
            QueuedBatch.settled_at < stop,
        )
        .group_by(QueuedBatch.exchange_id)
    )
    return {exchange_id: count for exchange_id, count in rows}


def queued_counts(session: Session) -> dict[int | None, int]:
    """Batches waiting for a consumer now, by exchange id."""
    rows = session.execute(
        select(QueuedBatch.exchange_id, func.count())
        .where(QueuedBatch.status == QUEUED)
        .group_by(QueuedBatch.exchange_id)
    )
    return {exchange_id: count for exchange_id, count in rows}


def reason_of(exc: BaseException) -> str:
    """Why a batch was refused, for its record and its dead letter."""
    detail = getattr(exc, "message", None) or str(exc)
    result = getattr(exc, "result", None)
    if result is not None and getattr(result, "by_reason", None):
        detail += f" ({json.dumps(result.by_reason, sort_keys=True)})"
    return f"{type(exc).__name__}: {detail}"
