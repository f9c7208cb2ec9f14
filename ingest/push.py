"""Batches pushed by an exchange: idempotent, durable, retried past transient failures.

:func:`push` is what ``POST /v1/trades`` does, without HTTP: a batch (its bytes and
format) is checked against the key's exchange, archived and validated against a read-only
snapshot of the reference data, then stored in one short write transaction, and its answer
is returned only after that transaction has committed. No write lock is held while a batch
is read or checked; a lock another writer still holds after the retries answers 503 with
``Retry-After``. With an ``Idempotency-Key`` the first answer is stored with the batch and
replayed for a retry with the same payload; the same key with another payload is refused.
:func:`revise` does the same for one cancel or amend of a stored trade.
:func:`check_for_queue` does the same checks for a deployment with the feed log
(:mod:`ingest.feed_log`), which then appends the batch instead of storing it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.catalogue import Catalogue
from core.errors import BatchRejected, IdempotencyConflict, PayloadTooLarge, UnknownTrade
from core.faults import fault_point
from core.fields import Reason
from core.settings import Settings
from ingest import queued
from ingest.archive import archive_bytes
from ingest.batch import (
    BatchSource,
    PreparedBatch,
    check_exchange_column,
    current,
    ingest_batch,
    ingest_frame,
    prepare,
)
from ingest.feed_log import QueuedMessage
from ingest.health import after_window_warning
from ingest.limits import Limits
from ingest.readers import read_body
from ingest.results import IngestResult, Rejection
from ingest.validate import REJECT_CODE, REJECT_FIELD, REJECT_MESSAGE, ROW
from store import models
from store.db import snapshot
from store.models import IdempotencyRecord

ATTEMPTS = 3


@dataclass(frozen=True)
class Pusher:
    """The exchange a key pushes for."""

    exchange_id: int
    exchange_code: str


@dataclass(frozen=True)
class Answer:
    """What a push answers: a status, a JSON body, and whether it is a stored answer."""

    status: int
    body: bytes
    replayed: bool = False
    retry_after: int | None = None
    """Seconds to wait before sending the same request again (a busy database)."""


BUSY = Answer(
    503,
    json.dumps(
        {"error": "DatabaseBusy", "detail": "the database is busy; nothing was stored, retry"}
    ).encode(),
    retry_after=1,
)


def _request_hash(fmt: str, atomic: bool, body: bytes) -> str:
    digest = hashlib.sha256(f"POST /v1/trades\n{fmt}\natomic={atomic}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def _stored_answer(session: Session, pusher: Pusher, key: str, now: dt.datetime):
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.exchange_id == pusher.exchange_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at > now,
        )
    )


def _replay(record: IdempotencyRecord, request_hash: str) -> Answer:
    if record.request_hash != request_hash:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for a different payload; use a new key"
        )
    return Answer(record.status_code, record.response_body.encode(), replayed=True)


def rejected_answer(message: str, error: str, result: IngestResult) -> Answer:
    detail = {"message": message, **result.dump()}
    return Answer(422, json.dumps({"error": error, "detail": detail}).encode())


def _transient(exc: OperationalError) -> bool:
    """A failure that another attempt may not meet: a deadlock or serialisation failure
    (PostgreSQL), a lock still held after the busy timeout (SQLite)."""
    name = type(exc.orig).__name__
    return name in ("DeadlockDetected", "SerializationFailure") or "locked" in str(exc.orig)


def _retrying(attempt):
    """``attempt()`` again (at most twice more) after a transient database failure; a batch
    is one transaction, so a failed attempt left nothing behind."""
    for n in range(ATTEMPTS):
        try:
            return attempt()
        except OperationalError as exc:
            if n == ATTEMPTS - 1 or not _transient(exc):
                raise
            time.sleep(0.05 * (n + 1))
    raise AssertionError("unreachable")


def push(
    sessions: sessionmaker[Session],
    catalogue: Catalogue,
    settings: Settings,
    pusher: Pusher,
    fmt: str,
    body: bytes,
    *,
    atomic: bool,
    idempotency_key: str | None,
) -> Answer:
    """Store one pushed batch (see the module docstring); the answer once it is durable."""
    return _push(sessions, catalogue, settings, pusher, fmt, body, atomic, idempotency_key)


def _push(sessions, catalogue, settings, pusher, fmt, body, atomic, idempotency_key) -> Answer:
    now = dt.datetime.now(dt.UTC)
    request_hash = _request_hash(fmt, atomic, body)
    if idempotency_key is not None:
        with snapshot(sessions) as session:
            record = _stored_answer(session, pusher, idempotency_key, now)
            if record is not None:
                return _replay(record, request_hash)
    frame = read_body(body, fmt, Limits.from_settings(settings))
    if frame.height > settings.rows_per_batch:
        raise PayloadTooLarge(
            f"{frame.height} rows exceed the limit of {settings.rows_per_batch} rows per batch"
        )
    check_exchange_column(frame, pusher.exchange_code)
    archived = archive_bytes(settings.archive_dir, pusher.exchange_code, body, fmt)
    with snapshot(sessions) as session:
        prepared = prepare(
            session,
            catalogue,
            pusher.exchange_code,
            frame,
            settings=settings,
            now=now,
            atomic=atomic,
        )
    source = BatchSource("http", fmt, archived.sha256, archived.path)
    try:
        answer = _retrying(
            lambda: _commit(
                sessions, catalogue, settings, prepared, source, request_hash, idempotency_key
            )
        )
    except BatchRejected as exc:
        return rejected_answer(exc.message, "BatchRejected", exc.result)
    except IntegrityError:
        if idempotency_key is None:
            raise
        # The same key committed concurrently: answer as it was answered.
        with snapshot(sessions) as session:
            record = _stored_answer(session, pusher, idempotency_key, now)
            if record is None:
                raise
            return _replay(record, request_hash)
    except OperationalError as exc:
        if not _transient(exc):
            raise
        return BUSY
    fault_point("after_commit")
    return Answer(200, answer)


@dataclass(frozen=True)
class ToQueue:
    """A push checked and registered for the feed log: the message to append (unless the
    batch is settled already), its id, and the 202 answer once it is appended."""

    message: QueuedMessage
    msg_id: str
    status: str
    replayed: bool
    answer: dict[str, Any]

    def accepted(self) -> Answer:
        return Answer(202, json.dumps(self.answer).encode(), replayed=self.replayed)


def check_for_queue(
    sessions: sessionmaker[Session],
    catalogue: Catalogue,
    settings: Settings,
    pusher: Pusher,
    fmt: str,
    body: bytes,
    *,
    atomic: bool,
    idempotency_key: str | None,
) -> Answer | ToQueue:
    """What ``POST /v1/trades`` does with the feed log, up to the append: the batch read,
    limited and checked as :func:`push` does, refused whole if ``atomic`` and any row is
    invalid, then registered (:func:`ingest.queued.register`; a re-send finds its batch)."""
    now = dt.datetime.now(dt.UTC)
    request_hash = _request_hash(fmt, atomic, body)
    frame = read_body(body, fmt, Limits.from_settings(settings))
    if frame.height > settings.rows_per_batch:
        raise PayloadTooLarge(
            f"{frame.height} rows exceed the limit of {settings.rows_per_batch} rows per batch"
        )
    check_exchange_column(frame, pusher.exchange_code)
    with snapshot(sessions) as session:
        prepared = prepare(
            session, catalogue, pusher.exchange_code, frame, settings=settings, now=now
        )
    result = _validation_result(prepared)
    if atomic and result.rejected:
        return rejected_answer(BatchRejected(result).message, "BatchRejected", result)
    registered = _retrying(
        lambda: queued.register(
            sessions,
            pusher.exchange_id,
            queued.dedupe_key(idempotency_key, request_hash),
            request_hash,
            now,
            settings.idempotency_ttl,
        )
    )
    message = QueuedMessage(registered.batch_id, pusher.exchange_code, fmt, atomic, now, body)
    answer: dict[str, Any] = {"batch_id": registered.batch_id, "status": registered.status}
    if registered.reason is not None:
        answer["reason"] = registered.reason
    answer |= {
        "rejected": result.rejected,
        "rejections": result.dump()["rejections"],
        "by_reason": result.by_reason,
        "warnings": result.dump()["warnings"],
    }
    msg_id = f"{pusher.exchange_code}:{queued.dedupe_key(idempotency_key, request_hash)}"
    return ToQueue(message, msg_id, registered.status, registered.replayed, answer)


def _validation_result(prepared: PreparedBatch) -> IngestResult:
    """What validation alone tells of a batch: its rejected rows, and the trades it would
    store for days before the correction window (before duplicates are known)."""
    checked, ctx = prepared.checked, prepared.ctx
    bad = checked.bad
    rejections = [
        Rejection(*r)
        for r in bad.select(
            ROW, "trade_id__raw", REJECT_FIELD, REJECT_CODE, REJECT_MESSAGE
        ).iter_rows()
    ]
    new = checked.good.filter(pl.col("action") == "new")
    late = after_window_warning(None, ctx.rules.calendar, ctx.now, 0, new, all_stored=True)
    return IngestResult(
        None,
        rejected=bad.height,
        rejections=rejections,
        by_reason=dict(bad[REJECT_CODE].value_counts().iter_rows()),
        rows=checked.rows,
        warnings=[late] if late else [],
    )


def _commit(
    sessions: sessionmaker[Session],
    catalogue: Catalogue,
    settings: Settings,
    prepared: PreparedBatch,
    source: BatchSource,
    request_hash: str,
    idempotency_key: str | None,
) -> bytes:
    """Store a checked batch (and its answer, under ``idempotency_key``) in one write
    transaction; its answer once committed."""
    with sessions.begin() as session:
        prepared = current(session, catalogue, prepared, settings=settings)
        ctx = prepared.ctx
        result = ingest_batch(session, ctx, None, source, checked=prepared.checked)
        answer = result.json()
        if idempotency_key is not None:
            record = IdempotencyRecord(
                exchange_id=ctx.exchange_id,
                key=idempotency_key,
                request_hash=request_hash,
                status_code=200,
                response_body=answer.decode(),
                batch_id=result.batch_id,
                created_at=ctx.now,
                expires_at=ctx.now + settings.idempotency_ttl,
            )
            _store_answer(session, record)
        fault_point("before_commit", answer=answer.decode())
    return answer


def _stored(session, catalogue, settings, pusher, frame, archived, fmt, now, atomic=False):
    """The batch ``frame`` (archived as ``archived``) validated and stored for the pusher."""
    return ingest_frame(
        session,
        catalogue,
        frame,
        exchange_code=pusher.exchange_code,
        source="http",
        fmt=fmt,
        sha256=archived.sha256,
        archive_path=archived.path,
        now=now,
        atomic=atomic,
        settings=settings,
    )


def _store_answer(session: Session, record: IdempotencyRecord) -> None:
    """Keep the answer for retries, and drop the exchange's expired ones."""
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.exchange_id == record.exchange_id,
            IdempotencyRecord.expires_at <= record.created_at,
        )
    )
    session.add(record)
    session.flush()


class _Refused(Exception):
    """Rolls back a single-trade change whose row was rejected."""

    def __init__(self, result: IngestResult) -> None:
        super().__init__("rejected")
        self.result = result


def revise(
    sessions: sessionmaker[Session],
    catalogue: Catalogue,
    settings: Settings,
    pusher: Pusher,
    row: dict[str, Any],
) -> Answer:
    """One cancel or amend through the batch path; :class:`UnknownTrade` when the trade is
    not the exchange's."""
    frame = pl.DataFrame([row], schema=dict.fromkeys(row, pl.String))
    body = json.dumps([row], separators=(",", ":"), sort_keys=True).encode()
    archived = archive_bytes(settings.archive_dir, pusher.exchange_code, body, "json")
    try:
        with sessions.begin() as session:
            known = session.scalar(
                select(models.Trade.id).where(
                    models.Trade.exchange_id == pusher.exchange_id,
                    models.Trade.trade_id == row["trade_id"],
                )
            )
            if known is None:
                raise UnknownTrade(row["trade_id"])
            now = dt.datetime.now(dt.UTC)
            result = _stored(session, catalogue, settings, pusher, frame, archived, "json", now)
            if any(r.code == Reason.UNKNOWN_TRADE for r in result.rejections):
                raise UnknownTrade(row["trade_id"])
            if result.rejected:
                raise _Refused(result)
    except _Refused as refused:
        return rejected_answer("the trade is invalid", "TradeRejected", refused.result)
    except OperationalError as exc:
        if not _transient(exc):
            raise
        return BUSY
    return Answer(200, result.json())
