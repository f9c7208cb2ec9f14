"""Conditional and partial requests: an ``ETag`` on every GET answer, ``If-None-Match``
answers 304; data answers also answer ``HEAD`` and byte ranges.

Published data only changes when a transaction publishes vintages (which raises
``publication_state.version``) or when rows are added to the tables an answer reads, so
for the data endpoints the tag is a hash of the request (path, query, negotiated media
type, the caller's key) and of that data version, computed *before* the answer is: a
matching ``If-None-Match`` costs one small query and no answer is built. Every other GET
(the dashboard page, the OpenAPI document, other areas' endpoints) is tagged by the hash of
its body. Health probes and the event stream are not cached and carry no tag.

A data answer is fully determined by its tag (its encoders are deterministic), so the tag
is strong, ``Last-Modified`` is the time of the latest publication, and the answer can be
read in byte ranges (:mod:`api.ranges`) the way Polars and fsspec read a file by URL.
Small answers (up to ``CACHE_ENTRY_BYTES``) are kept in a per-process LRU cache of
``response_cache_mb`` and served from it, whole or in part, while the tag holds; a new
publication changes every tag, so nothing stale is ever served. ``HEAD`` and a ``Range``
need the whole answer's size first: on a cache miss the answer is made whole (and kept if
small) before anything is sent; an answer larger than a cache entry is made again for each
such request. A plain GET that misses the cache streams as the application makes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import IO
from urllib.parse import parse_qsl

import anyio
from sqlalchemy import BigInteger, Engine, column, text
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KEY_PARAMETER, presented_key
from api.ranges import Body, http_date, if_range_holds, send_answer
from core import __version__
from store.models import UTCDateTime

DATA_PREFIXES = (
    "/v1/commodities",
    "/v1/indices",
    "/v1/assessments",
    "/v1/corrections",
    "/v1/alerts",
    "/v1/changes",
    "/v1/formulas",
    "/v1/series",
    "/sdmx/",
)
CACHE_ENTRY_BYTES = 4 * 2**20
UNTAGGED_PREFIXES = ("/healthz", "/readyz", "/metrics", "/v1/stream", "/static/")
VARY = b"Accept, Accept-Encoding"

_STATE_SQL = text(
    "SELECT (SELECT version FROM publication_state WHERE id = 1) AS version,"
    " (SELECT max(id) FROM index_values) AS index_values,"
    " (SELECT max(id) FROM assessments) AS assessments,"
    " (SELECT max(id) FROM corrections) AS corrections,"
    " (SELECT max(id) FROM index_constituents) AS index_constituents,"
    " (SELECT max(id) FROM restatement_marks) AS restatement_marks,"
    " (SELECT max(id) FROM trades) AS trades,"
    " (SELECT updated_at FROM publication_state WHERE id = 1) AS published_at"
).columns(
    *(
        column(name, BigInteger())
        for name in (
            "version",
            "index_values",
            "assessments",
            "corrections",
            "index_constituents",
            "restatement_marks",
            "trades",
        )
    ),
    column("published_at", UTCDateTime()),
)


@dataclass(frozen=True)
class DataState:
    """What every data answer is made from: its ``version`` (changes with anything
    published or stored) and the time of the latest publication."""

    version: str
    published_at: dt.datetime | None


def data_state(engine: Engine) -> DataState:
    with engine.connect() as connection:
        *counters, published_at = connection.execute(_STATE_SQL).one()
    return DataState(".".join("-" if v is None else str(v) for v in counters), published_at)


def _matches(if_none_match: str, tag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2)."""
    wanted = tag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _request_key(scope: Scope, headers: Headers) -> str:
    """What the answer depends on besides the data: the path, the query (the key in it
    aside), the negotiated representation, and who asks: the hash of the API key presented
    in any way, so a keyed answer is never served to another caller."""
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)
    query = sorted((kv for kv in query if kv[0] != KEY_PARAMETER), key=lambda kv: kv[0])
    key = presented_key(Request(scope))
    caller = hashlib.sha256(key.encode()).hexdigest() if key else ""
    return "|".join(
        [
            scope["path"],
            repr(query),
            headers.get("accept", ""),
            headers.get("accept-encoding", ""),
            caller,
        ]
    )


def _tag(*parts: str, weak: bool = True) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f'W/"{digest}"' if weak else f'"{digest}"'


def _validators(
    tag: str, published_at: dt.datetime | None = None, *, ranges: bool = False
) -> list[tuple[bytes, bytes]]:
    validators = [(b"etag", tag.encode()), (b"vary", VARY), (b"cache-control", b"no-cache")]
    if ranges:
        validators.append((b"accept-ranges", b"bytes"))
    if published_at is not None:
        validators.append((b"last-modified", http_date(published_at).encode()))
    return validators


async def _not_modified(send: Send, validators: list[tuple[bytes, bytes]]) -> None:
    headers = [(k, v) for k, v in validators if k != b"accept-ranges"]
    await send({"type": "http.response.start", "status": 304, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_validators(message: Message, validators: list[tuple[bytes, bytes]]) -> Message:
    headers = MutableHeaders(scope=message)
    for name, value in validators:
        if name == b"cache-control":
            headers.setdefault("cache-control", value.decode())
        else:
            headers[name.decode()] = value.decode()
    return message


class ResponseCache:
    """Complete 200 answers by ETag, least recently used first out, within a byte budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: OrderedDict[str, tuple[list, bytes]] = OrderedDict()

    def get(self, tag: str) -> tuple[list, bytes] | None:
        entry = self.entries.get(tag)
        if entry is not None:
            self.entries.move_to_end(tag)
        return entry

    def put(self, tag: str, headers: list, body: bytes) -> None:
        if len(body) > min(CACHE_ENTRY_BYTES, self.max_bytes) or tag in self.entries:
            return
        self.entries[tag] = (headers, body)
        self.size += len(body)
        while self.size > self.max_bytes:
            _, (_, dropped) = self.entries.popitem(last=False)
            self.size -= len(dropped)


class ConditionalMiddleware:
    def __init__(
        self, app: ASGIApp, *, engine: Engine, catalogue_digest: str, cache_bytes: int = 0
    ) -> None:
        self.app = app
        self.engine = engine
        self.digest = catalogue_digest
        self.cache = ResponseCache(cache_bytes) if cache_bytes > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(UNTAGGED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if path.startswith(DATA_PREFIXES):
            await self._by_version(scope, receive, send, headers)
        else:
            await self._by_body(scope, receive, send, headers)

    async def _by_version(self, scope, receive, send, headers: Headers) -> None:
        if self.engine.dialect.name == "sqlite":
            # A local file read in WAL mode, which no writer blocks: cheaper than a thread.
            state = data_state(self.engine)
        else:
            state = await anyio.to_thread.run_sync(data_state, self.engine)
        tag = _tag(
            __version__, self.digest, state.version, _request_key(scope, headers), weak=False
        )
        validators = _validators(tag, state.published_at, ranges=True)
        if _matches(headers.get("if-none-match", ""), tag):
            await _not_modified(send, validators)
            return
        head = scope["method"] == "HEAD"
        wanted = headers.get("range") if if_range_holds(headers.get("if-range"), tag) else None
        cached = self.cache.get(tag) if self.cache is not None else None
        if cached is not None:
            start_headers, body = cached
            await send_answer(send, start_headers, Body(body, len(body)), wanted, head=head)
        elif head or wanted is not None:
            await self._whole_first(scope, receive, send, tag, validators, wanted)
        else:
            await self._streamed(scope, receive, send, tag, validators)

    async def _streamed(self, scope, receive, send, tag: str, validators: list) -> None:
        """The answer as the application makes it, tagged; kept in the cache if small."""
        kept: list[bytes] | None = [] if self.cache is not None else None
        start_headers: list = []
        size = 0

        async def tagged(message: Message) -> None:
            nonlocal kept, size, start_headers
            if message["type"] == "http.response.start":
                if message["status"] == 200:
                    message = _with_validators(message, validators)
                    start_headers = list(message.get("headers", []))
                else:
                    kept = None
            elif message["type"] == "http.response.body" and kept is not None:
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > CACHE_ENTRY_BYTES:
                    kept = None
                else:
                    kept.append(chunk)
                    if not message.get("more_body", False):
                        self._keep(tag, start_headers, b"".join(kept))
            await send(message)

        await self.app(scope, receive, tagged)

    async def _whole_first(self, scope, receive, send, tag, validators, wanted) -> None:
        """For ``HEAD`` and ``Range``: the whole answer is made (into memory, or a file when
        it outgrows the cache's entry size) before its size and any part of it is sent."""
        head = scope["method"] == "HEAD"
        start: Message | None = None
        spool = tempfile.SpooledTemporaryFile(max_size=CACHE_ENTRY_BYTES)  # noqa: SIM115
        size = 0
        finished = False

        async def collected(message: Message) -> None:
            nonlocal start, size, finished
            if message["type"] == "http.response.start":
                start = message
                if message["status"] != 200:
                    await send(message)
            elif start is None or start["status"] != 200:
                await send({**message, "body": b""} if head else message)
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if not head or self._cacheable(size):
                    spool.write(chunk)
                finished = not message.get("more_body", False)

        with spool:
            await self.app({**scope, "method": "GET"}, receive, collected)
            if start is None or start["status"] != 200 or not finished:
                return
            headers = list(_with_validators(start, validators)["headers"])
            content: bytes | IO[bytes] = spool
            if self._cacheable(size):
                spool.seek(0)
                content = spool.read()
                self._keep(tag, headers, content)
            await send_answer(send, headers, Body(content, size), wanted, head=head)

    def _cacheable(self, size: int) -> bool:
        return self.cache is not None and size <= min(CACHE_ENTRY_BYTES, self.cache.max_bytes)

    def _keep(self, tag: str, start_headers: list, body: bytes) -> None:
        if self.cache is None:
            return
        headers = [(k, v) for k, v in start_headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        self.cache.put(tag, headers, body)

    async def _by_body(self, scope, receive, send, headers: Headers) -> None:
        start: Message | None = None
        body: list[bytes] = []
        passthrough = False

        async def buffered(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
            elif message["type"] == "http.response.start":
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                if message["status"] != 200 or content_type.startswith("text/event-stream"):
                    passthrough = True
                    await send(message)
                else:
                    start = message
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    content = b"".join(body)
                    tag = _tag(hashlib.sha256(content).hexdigest(), headers.get("accept", ""))
                    validators = _validators(tag)
                    if _matches(headers.get("if-none-match", ""), tag):
                        await _not_modified(send, validators)
                        return
                    await send(_with_validators(start, validators))
                    await send({"type": "http.response.body", "body": content})
            else:
                await send(message)

        await self.app(scope, receive, buffered)
