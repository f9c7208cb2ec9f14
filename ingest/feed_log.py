"""The feed log: pushed batches appended to a NATS JetStream stream, stored by consumers.

One stream per deployment (``feed_log_stream``), kept on file storage; its subjects are
``bcpi.<stream>.trades.<exchange>`` (the batches) and ``bcpi.<stream>.dead`` (the
batches a consumer refused for a reason of their data, with that reason). The stream keeps
a batch until a consumer has stored it and acknowledged it (work-queue retention), and
drops a batch whose ``Nats-Msg-Id`` it has seen within ``DUPLICATE_WINDOW``. One message
is one batch: the body as received (deflated) and, in headers, what a consumer needs to
store it as the API would have: its batch id, exchange, format, ``atomic`` and the instant
the API received it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import zlib
from dataclasses import dataclass

import nats
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import NotFoundError

from core.errors import BcpiError, FeedLogUnavailable, PayloadTooLarge
from core.settings import Settings

DUPLICATE_WINDOW = dt.timedelta(hours=2)
"""A batch re-sent this soon is dropped by the stream itself (the store's natural keys
and the batch records catch any later one)."""
DURABLE = "bcpi-consume"
PUBLISH_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
BATCH_ID, EXCHANGE, FORMAT, ATOMIC, RECEIVED_AT, REASON = (
    "Bcpi-Batch-Id",
    "Bcpi-Exchange",
    "Bcpi-Format",
    "Bcpi-Atomic",
    "Bcpi-Received-At",
    "Bcpi-Reason",
)
MSG_ID = "Nats-Msg-Id"


class MalformedMessage(BcpiError):
    """A message on the feed log that no push could have written."""


def servers(feed_log_url: str) -> list[str]:
    """The servers of ``BCPI_FEED_LOG_URL``: one URL, or several comma-separated (every
    server of a cluster, each with its credentials, so that a reconnection to any of them
    is authenticated)."""
    return [url.strip() for url in feed_log_url.split(",") if url.strip()]


def shown(feed_log_url: str) -> str:
    """The servers as a log line may show them: without user or password."""
    return ", ".join(re.sub(r"//[^@/]*@", "//", url) for url in servers(feed_log_url))


def _token(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"


@dataclass(frozen=True)
class LogNames:
    """The stream and subjects of one deployment's feed log."""

    stream: str

    @property
    def prefix(self) -> str:
        return f"bcpi.{_token(self.stream)}"

    def trades(self, exchange_code: str) -> str:
        return f"{self.prefix}.trades.{_token(exchange_code)}"

    @property
    def all_trades(self) -> str:
        return f"{self.prefix}.trades.>"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.dead"


@dataclass(frozen=True)
class QueuedMessage:
    """One batch on the log."""

    batch_id: str
    exchange_code: str
    fmt: str
    atomic: bool
    received_at: dt.datetime
    body: bytes

    def headers(self, msg_id: str) -> dict[str, str]:
        return {
            MSG_ID: msg_id,
            BATCH_ID: self.batch_id,
            EXCHANGE: self.exchange_code,
            FORMAT: self.fmt,
            ATOMIC: "1" if self.atomic else "0",
            RECEIVED_AT: self.received_at.astimezone(dt.UTC).isoformat(),
        }

    def payload(self) -> bytes:
        return zlib.compress(self.body, 1)

    @classmethod
    def decode(cls, headers: dict[str, str] | None, data: bytes) -> QueuedMessage:
        """The batch a message holds; :class:`MalformedMessage` when it holds none."""
        headers = headers or {}
        missing = [h for h in (BATCH_ID, EXCHANGE, FORMAT, RECEIVED_AT) if not headers.get(h)]
        if missing:
            raise MalformedMessage(f"the message has no {', '.join(missing)} header")
        try:
            received = dt.datetime.fromisoformat(headers[RECEIVED_AT])
            body = zlib.decompress(data)
        except (ValueError, zlib.error) as exc:
            raise MalformedMessage(f"the message cannot be read: {exc}") from None
        if received.tzinfo is None:
            raise MalformedMessage(f"{RECEIVED_AT} has no time zone")
        return cls(
            headers[BATCH_ID],
            headers[EXCHANGE],
            headers[FORMAT],
            headers.get(ATOMIC) == "1",
            received,
            body,
        )


def stream_config(settings: Settings) -> api.StreamConfig:
    names = LogNames(settings.feed_log_stream)
    return api.StreamConfig(
        name=settings.feed_log_stream,
        subjects=[names.all_trades, names.dead],
        retention=api.RetentionPolicy.WORK_QUEUE,
        storage=api.StorageType.FILE,
        num_replicas=settings.feed_log_replicas,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
    )


def consumer_config(settings: Settings) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=DURABLE,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=settings.feed_log_ack_wait_seconds,
        max_deliver=-1,  # a failing database is waited out; bad data goes to the dead letters
        filter_subject=LogNames(settings.feed_log_stream).all_trades,
    )


class FeedLog:
    """One connection to the log per process, opened on first use (and again if the event
    loop it was opened on has gone), the stream created if it does not exist."""

    def __init__(self, settings: Settings) -> None:
        if not settings.feed_log_url:
            raise ValueError("the feed log needs feed_log_url")
        self.settings = settings
        self.names = LogNames(settings.feed_log_stream)
        self._nc: nats.NATS | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def jetstream(self):
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new loop: the old connection is gone
            self._nc, self._loop, self._lock = None, loop, asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                # Reconnects without end once connected; the first connection is bounded.
                nc = await asyncio.wait_for(
                    nats.connect(
                        servers(self.settings.feed_log_url),
                        connect_timeout=CONNECT_TIMEOUT,
                        max_reconnect_attempts=-1,
                        allow_reconnect=True,
                    ),
                    CONNECT_TIMEOUT,
                )
                js = nc.jetstream(timeout=PUBLISH_TIMEOUT)
                try:
                    await js.stream_info(self.settings.feed_log_stream)
                except NotFoundError:
                    await js.add_stream(stream_config(self.settings))
                self._nc = nc
        return self._nc.jetstream(timeout=PUBLISH_TIMEOUT)

    @property
    def max_payload(self) -> int:
        return self._nc.max_payload if self._nc is not None else 1 << 20

    async def publish(self, message: QueuedMessage, msg_id: str) -> api.PubAck:
        """Append ``message``; returns once JetStream has stored it (``duplicate``: it had
        it already). :class:`FeedLogUnavailable` when it does not say so."""
        try:
            js = await self.jetstream()
            payload = message.payload()
            if len(payload) > self.max_payload:
                raise PayloadTooLarge(
                    f"the batch is {len(payload)} bytes compressed; the feed log takes at most"
                    f" {self.max_payload} (the NATS server's max_payload): send smaller batches"
                )
            return await js.publish(
                self.names.trades(message.exchange_code),
                payload,
                headers=message.headers(msg_id),
            )
        except (NatsError, OSError, TimeoutError) as exc:
            raise FeedLogUnavailable(
                f"the feed log did not take the batch ({type(exc).__name__}); nothing was"
                " queued, retry"
            ) from exc

    async def dead_letter(self, headers: dict[str, str], data: bytes, reason: str) -> None:
        """Put a refused message on the dead-letter subject, with why (once: by its id)."""
        js = await self.jetstream()
        batch = headers.get(BATCH_ID, "")
        kept = {k: v for k, v in headers.items() if k != MSG_ID}
        # A header value is one line.
        kept[REASON] = " ".join(reason.split())[:4000]
        kept[MSG_ID] = f"dead:{batch or zlib.crc32(data)}"
        await js.publish(self.names.dead, data, headers=kept)

    async def subscription(self):
        """The shared durable pull consumer (created if absent)."""
        js = await self.jetstream()
        stream = self.settings.feed_log_stream
        try:
            await js.consumer_info(stream, DURABLE)
        except NotFoundError:
            await js.add_consumer(stream, consumer_config(self.settings))
        return await js.pull_subscribe_bind(DURABLE, stream=stream)

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed and self._loop is asyncio.get_running_loop():
            await nc.drain()
