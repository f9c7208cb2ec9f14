"""Per-caller rate limits on reads, counted in the database.

Reading needs no key unless ``require_read_key`` is set; a caller who sends one
(``Authorization: Bearer <key>`` or ``X-API-Key``) is identified by :mod:`api.auth`
(unknown or revoked: 401; a role that may not read: 403). Each key may make
``read_rate_limit`` requests per fixed window of ``rate_limit_window_seconds``; callers
without a key share ``anonymous_rate_limit`` per client address (0: unlimited). The
counters are rows of ``rate_limit_counters``, so every worker process of every server
counts against the same limit. Over the limit: 429 with ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

import anyio
from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import optional_reader, presented_key
from api.conditional import DATA_PREFIXES
from core.errors import BcpiError
from core.settings import Settings
from store.db import session_scope
from store.models import RateLimitCounter

READ_PREFIXES = (*DATA_PREFIXES, "/v1/calendar", "/v1/methodology", "/v1/stream")
KEEP_WINDOWS = 60
SDMX_PREFIX = "/sdmx/"


@dataclass(frozen=True)
class Caller:
    bucket: str | None
    limit: int
    refused: BcpiError | None = None


def identify(request: Request, settings: Settings) -> Caller:
    try:
        principal = optional_reader(request)
    except BcpiError as exc:
        return Caller(None, 0, exc)
    if principal is None:
        limit = settings.anonymous_rate_limit
        address = request.client.host if request.client else "unknown"
        return Caller(f"addr:{address}" if limit else None, limit)
    limit = settings.read_rate_limit
    return Caller(f"key:{principal.key_id}" if limit else None, limit)


def count_request(engine: Engine, bucket: str, window: dt.datetime) -> int:
    """Add one request to ``bucket``'s counter for ``window``; the new count."""
    table = RateLimitCounter.__table__
    dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(table)
        .values(bucket=bucket, window_start=window, count=1)
        .on_conflict_do_update(
            index_elements=["bucket", "window_start"], set_={"count": table.c["count"] + 1}
        )
        .returning(table.c["count"])
    )
    with session_scope(engine) as session:
        count = session.execute(statement).scalar_one()
        if count == 1:
            old = window - dt.timedelta(minutes=KEEP_WINDOWS)
            session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_start < old))
    return count


async def _refuse(send: Send, status: int, error: str, detail: str, headers=()) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, engine: Engine, settings: Settings) -> None:
        self.app = app
        self.engine = engine
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(READ_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if presented_key(request) is None and not (
            self.settings.require_read_key or self.settings.anonymous_rate_limit
        ):
            await self.app(scope, receive, send)
            return
        caller = await anyio.to_thread.run_sync(identify, request, self.settings)
        if caller.refused is not None and scope["path"].startswith(SDMX_PREFIX):
            await self.app(scope, receive, send)  # refused again there, as an SDMX error
            return
        if caller.refused is not None:
            refused = caller.refused
            challenge = [(b"www-authenticate", b"Bearer")] if refused.status_code == 401 else []
            await _refuse(
                send, refused.status_code, type(refused).__name__, refused.message, challenge
            )
            return
        if caller.bucket is None:
            await self.app(scope, receive, send)
            return
        span = self.settings.rate_limit_window_seconds
        now = dt.datetime.now(dt.UTC)
        window = dt.datetime.fromtimestamp(now.timestamp() // span * span, dt.UTC)
        count = await anyio.to_thread.run_sync(count_request, self.engine, caller.bucket, window)
        reset = max(1, math.ceil((window - now).total_seconds() + span))
        limits = [
            (b"x-ratelimit-limit", str(caller.limit).encode()),
            (b"x-ratelimit-remaining", str(max(0, caller.limit - count)).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
        if count > caller.limit:
            await _refuse(
                send,
                429,
                "RateLimited",
                f"more than {caller.limit} requests in {span} s; retry in {reset} s",
                [(b"retry-after", str(reset).encode()), *limits],
            )
            return

        async def with_limits(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *limits]
            await send(message)

        await self.app(scope, receive, with_limits)
