"""Conditional requests: an ``ETag`` on every GET answer, ``If-None-Match`` answers 304.

Published data only changes when a transaction publishes vintages (which raises
``publication_state.version``) or when rows are added to the tables an answer reads, so
for the data endpoints the tag is a hash of the request (path, query, negotiated media
type) and of that data version, computed *before* the answer is: a matching
``If-None-Match`` costs one small query and no answer is built. Every other GET (the
dashboard page, the OpenAPI document, other areas' endpoints) is tagged by the hash of its
body. Health probes and the event stream are not cached and carry no tag.

Because a data answer is fully determined by its tag, small ones (up to
``CACHE_ENTRY_BYTES``) are also kept in a per-process LRU cache of ``response_cache_mb``
and served from it while the tag holds; a new publication changes every tag, so nothing
stale is ever served.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from urllib.parse import parse_qsl

import anyio
from sqlalchemy import Engine, text
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import __version__

DATA_PREFIXES = (
    "/v1/commodities",
    "/v1/indices",
    "/v1/assessments",
    "/v1/corrections",
    "/v1/alerts",
    "/v1/changes",
    "/v1/formulas",
)
CACHE_ENTRY_BYTES = 4 * 2**20
UNTAGGED_PREFIXES = ("/healthz", "/readyz", "/metrics", "/v1/stream", "/static/")

_VERSION_SQL = text(
    "SELECT (SELECT version FROM publication_state WHERE id = 1),"
    " (SELECT max(id) FROM index_values), (SELECT max(id) FROM assessments),"
    " (SELECT max(id) FROM corrections), (SELECT max(id) FROM index_constituents),"
    " (SELECT max(id) FROM restatement_marks), (SELECT max(id) FROM trades)"
)


def data_version(engine: Engine) -> str:
    with engine.connect() as connection:
        row = connection.execute(_VERSION_SQL).one()
    return ".".join("-" if v is None else str(v) for v in row)


def _matches(if_none_match: str, tag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2)."""
    wanted = tag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _request_key(scope: Scope, headers: Headers) -> str:
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)
    query.sort(key=lambda kv: kv[0])
    return "|".join(
        [scope["path"], repr(query), headers.get("accept", ""), headers.get("accept-encoding", "")]
    )


def _tag(*parts: str) -> str:
    return 'W/"' + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40] + '"'


async def _not_modified(send: Send, tag: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 304,
            "headers": [
                (b"etag", tag.encode()),
                (b"vary", b"Accept, Accept-Encoding"),
                (b"cache-control", b"no-cache"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def _with_tag(message: Message, tag: str) -> Message:
    headers = MutableHeaders(scope=message)
    headers["etag"] = tag
    headers["vary"] = "Accept, Accept-Encoding"
    headers.setdefault("cache-control", "no-cache")
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
        version = await anyio.to_thread.run_sync(data_version, self.engine)
        tag = _tag(__version__, self.digest, version, _request_key(scope, headers))
        if _matches(headers.get("if-none-match", ""), tag):
            await _not_modified(send, tag)
            return
        cached = self.cache.get(tag) if self.cache is not None else None
        if cached is not None:
            start_headers, body = cached
            await send({"type": "http.response.start", "status": 200, "headers": start_headers})
            await send({"type": "http.response.body", "body": body})
            return
        kept: list[bytes] | None = [] if self.cache is not None else None
        start_headers: list = []
        size = 0

        async def tagged(message: Message) -> None:
            nonlocal kept, size, start_headers
            if message["type"] == "http.response.start":
                if message["status"] == 200:
                    message = _with_tag(message, tag)
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
                        body = b"".join(kept)
                        headers = [
                            (k, v) for k, v in start_headers if k.lower() != b"content-length"
                        ]
                        headers.append((b"content-length", str(len(body)).encode()))
                        self.cache.put(tag, headers, body)
            await send(message)

        await self.app(scope, receive, tagged)

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
                    if _matches(headers.get("if-none-match", ""), tag):
                        await _not_modified(send, tag)
                        return
                    await send(_with_tag(start, tag))
                    await send({"type": "http.response.body", "body": content})
            else:
                await send(message)

        await self.app(scope, receive, buffered)
