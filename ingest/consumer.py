"""``bcpi consume``: take batches off the feed log and store them, one transaction each.

Several consumers share one durable pull consumer; each takes one batch at a time. A
batch is read and checked as a direct push is (against the reference data as it is now,
at the instant the API received it), its bytes archived on this host, then stored with
its record settled in one transaction; the message is acknowledged only after that
commit. A message already settled (redelivered after a commit whose acknowledgement was
lost) is acknowledged without storing anything. A batch refused for a reason of its data
goes to the dead-letter subject with the reason, is recorded ``dead`` and is terminated,
never delivered again; a database that fails or is unreachable makes the message come back
after a delay, as often as it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from nats.errors import TimeoutError as FetchTimeout
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.catalogue import Catalogue
from core.errors import BcpiError, PayloadTooLarge
from core.settings import Settings
from ingest import queued
from ingest.archive import archive_bytes
from ingest.batch import BatchSource, check_exchange_column, current, ingest_batch, prepare
from ingest.feed_log import BATCH_ID, EXCHANGE, FeedLog, MalformedMessage, QueuedMessage
from ingest.limits import Limits
from ingest.readers import read_body
from store import models
from store.db import snapshot

log = logging.getLogger("bcpi.consume")
RETRY_DELAY = 2.0
"""Seconds before a message that failed on the database comes back."""
UNEXPECTED_ATTEMPTS = 5
"""Deliveries of a message that fails for no known reason before it is refused."""
FETCH_SECONDS = 1.0


@dataclass
class ConsumeReport:
    stored: int = 0
    skipped: int = 0
    dead: int = 0
    retried: int = 0


def _exchange_id(sessions: sessionmaker[Session], code: str) -> int | None:
    with sessions() as session:
        return session.scalar(select(models.Exchange.id).where(models.Exchange.code == code))


def store_message(
    sessions: sessionmaker[Session],
    catalogue: Catalogue,
    settings: Settings,
    message: QueuedMessage,
) -> bool:
    """Store one batch and settle its record in one transaction; False when it was settled
    already (nothing stored). Domain errors (:class:`BcpiError`) are the data's fault."""
    exchange_id = _exchange_id(sessions, message.exchange_code)
    if queued.ensure(sessions, message.batch_id, exchange_id) != queued.QUEUED:
        return False
    if exchange_id is None:
        raise MalformedMessage(f"no exchange with code {message.exchange_code!r}")
    frame = read_body(message.body, message.fmt, Limits.from_settings(settings))
    if frame.height > settings.rows_per_batch:
        raise PayloadTooLarge(
            f"{frame.height} rows exceed the limit of {settings.rows_per_batch} rows per batch"
        )
    check_exchange_column(frame, message.exchange_code)
    options = {"settings": settings, "now": message.received_at, "atomic": message.atomic}
    with snapshot(sessions) as session:
        prepared = prepare(session, catalogue, message.exchange_code, frame, **options)
    archived = archive_bytes(settings.archive_dir, message.exchange_code, message.body, message.fmt)
    source = BatchSource("http", message.fmt, archived.sha256, archived.path)
    with sessions.begin() as session:
        record = queued.claim(session, message.batch_id)
        if record is None:
            return False
        prepared = current(session, catalogue, prepared, settings=settings)
        result = ingest_batch(session, prepared.ctx, None, source, checked=prepared.checked)
        queued.settle_stored(record, result.batch_id, result.json(), dt.datetime.now(dt.UTC))
    return True


def _transient(exc: BaseException) -> bool:
    """A failure of the database rather than of the batch: another attempt may pass.
    (An integrity error, two consumers recording one batch at once, passes on its next
    attempt too, but is retried only as often as an unexpected error.)"""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class Consumer:
    """One consumer of the log: :meth:`run` until ``stop`` is set (or the log stays empty
    for ``until_idle`` seconds)."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        catalogue: Catalogue,
        *,
        store: Callable[..., bool] = store_message,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.catalogue = catalogue
        self.log = FeedLog(settings)
        self.report = ConsumeReport()
        self._store = store

    async def run(self, stop: asyncio.Event, *, until_idle: float | None = None) -> ConsumeReport:
        subscription = await self.log.subscription()
        loop = asyncio.get_running_loop()
        last = loop.time()
        try:
            while not stop.is_set():
                try:
                    messages = await subscription.fetch(1, timeout=FETCH_SECONDS)
                except FetchTimeout:
                    if until_idle is not None and loop.time() - last >= until_idle:
                        break
                    continue
                for msg in messages:
                    await self.handle(msg)
                last = loop.time()
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            await self.log.close()
        return self.report

    async def handle(self, msg) -> None:
        headers = dict(msg.headers or {})
        try:
            message = QueuedMessage.decode(headers, msg.data)
            keep_alive = asyncio.create_task(self._in_progress(msg))
            try:
                stored = await asyncio.to_thread(
                    self._store, self.sessions, self.catalogue, self.settings, message
                )
            finally:
                keep_alive.cancel()
        except BcpiError as exc:
            await self._refuse(msg, headers, queued.reason_of(exc))
            return
        except Exception as exc:
            if _transient(exc):
                log.warning("batch %s: database failure, retrying: %s", headers.get(BATCH_ID), exc)
                self.report.retried += 1
                await msg.nak(delay=RETRY_DELAY)
                return
            if msg.metadata.num_delivered < UNEXPECTED_ATTEMPTS:
                log.exception("batch %s failed; it will be retried", headers.get(BATCH_ID))
                self.report.retried += 1
                await msg.nak(delay=RETRY_DELAY)
                return
            reason = f"failed {UNEXPECTED_ATTEMPTS} times: {queued.reason_of(exc)}"
            await self._refuse(msg, headers, reason)
            return
        await msg.ack()
        if stored:
            self.report.stored += 1
        else:
            self.report.skipped += 1

    async def _in_progress(self, msg) -> None:
        """Keep a long batch ours: tell the server we are working on it."""
        interval = max(0.2, self.settings.feed_log_ack_wait_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _refuse(self, msg, headers: dict[str, str], reason: str) -> None:
        """Dead-letter the message with ``reason``, record it, and never deliver it again
        (a database failure while recording it brings it back later instead)."""
        batch_id = headers.get(BATCH_ID) or f"stream-{msg.metadata.sequence.stream}"
        log.warning("batch %s refused: %s", batch_id, reason)
        try:
            await self.log.dead_letter({**headers, BATCH_ID: batch_id}, msg.data, reason)
            exchange_id = await asyncio.to_thread(
                _exchange_id, self.sessions, headers.get(EXCHANGE, "")
            )
            await asyncio.to_thread(
                queued.settle_dead,
                self.sessions,
                batch_id,
                exchange_id,
                reason,
                dt.datetime.now(dt.UTC),
            )
        except Exception as exc:
            log.warning("batch %s: cannot record the refusal yet: %s", batch_id, exc)
            self.report.retried += 1
            await msg.nak(delay=RETRY_DELAY)
            return
        await msg.term()
        self.report.dead += 1
