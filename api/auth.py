"""API-key authentication and role checks, as ``Annotated`` dependencies.

A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; to read
published data (a GET or HEAD) also as the ``api_key`` query parameter, so that a URL alone
can be handed to a reader such as ``pl.read_parquet`` (as FRED does). It is stored
only as its SHA-256 (:func:`store.reference.hash_key`); the stored digest is compared in
constant time, and the key itself is never logged (:mod:`core.logging` takes it out of
every log line, the access log's request line included) nor echoed. A missing, unknown or
revoked key answers 401; a valid key of the wrong role answers 403.

Roles: ``exchange`` (pushes its own exchange's trades; the exchange comes from the key,
never from the payload), ``admin`` (operations), ``read`` (published data), ``auditor``
(operators' reads) and ``metrics`` (``/metrics`` only, for the Prometheus scraper). Reading is
also open to any valid key and, unless ``require_read_key`` is set, to anonymous callers
(:data:`OptionalReader`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core.errors import BcpiError, Forbidden, Unauthenticated
from core.logging import redact_loggers
from publication.disclosure import PUBLIC, Audience
from store import models
from store.db import snapshot
from store.reference import hash_key

READER_ROLES = ("read", "admin", "exchange", "auditor")
MAX_KEY_LENGTH = 256
KEY_PARAMETER = "api_key"
READ_METHODS = ("GET", "HEAD")

# A key may arrive in the URL, which uvicorn's access log prints however its logging is set up.
redact_loggers("uvicorn.access", "uvicorn.error")


class KeyCheckUnavailable(BcpiError):
    """The database holding the keys cannot be reached: no key can be checked."""

    status_code = 503


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and role, and its exchange for ``exchange`` keys."""

    key_id: int
    role: str
    exchange_id: int | None = None
    exchange_code: str | None = None


def header_key(request: Request) -> str | None:
    """The key sent in ``Authorization: Bearer`` or ``X-API-Key``."""
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    key = request.headers.get("x-api-key", "").strip()
    return key or None


def presented_key(request: Request) -> str | None:
    """The key a reader sent: in a header, or (reads only) as ``?api_key=``."""
    key = header_key(request)
    if key is None and request.method in READ_METHODS:
        key = request.query_params.get(KEY_PARAMETER, "").strip() or None
    return key


def _lookup(request: Request, key: str) -> Principal | None:
    if len(key) > MAX_KEY_LENGTH or not key.isascii():
        return None
    digest = hash_key(key)
    try:
        with snapshot(request.app.state.sessions) as session:  # no write lock to wait on
            row = _key_row(session, digest)
    except OperationalError as exc:
        raise KeyCheckUnavailable(
            "the database cannot be reached, so the API key cannot be checked; try again later"
        ) from exc
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at:
        return None
    return Principal(row.id, row.role, row.exchange_id, row.code)


def _key_row(session, digest: str):
    return session.execute(
        select(
            models.ApiKey.id,
            models.ApiKey.key_hash,
            models.ApiKey.role,
            models.ApiKey.revoked_at,
            models.ApiKey.exchange_id,
            models.Exchange.code,
        )
        .outerjoin(models.Exchange, models.Exchange.id == models.ApiKey.exchange_id)
        .where(models.ApiKey.key_hash == digest)
    ).first()


def authenticate(request: Request) -> Principal:
    """The caller of an operation that needs a key of some role: sent in a header only."""
    return _principal(request, header_key(request))


def _principal(request: Request, key: str | None) -> Principal:
    if key is None:
        raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")
    principal = _lookup(request, key)
    if principal is None:
        raise Unauthenticated("the API key is unknown or revoked")
    return principal


def require_roles(*roles: str):
    """A dependency admitting a valid key whose role is one of ``roles``."""

    def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"this needs a key of role {' or '.join(roles)}")
        if principal.role == "exchange" and principal.exchange_id is None:
            raise Forbidden("this exchange key belongs to no exchange")
        return principal

    return dependency


ApiKeyParameter = Annotated[
    str | None,
    Query(
        alias=KEY_PARAMETER,
        description="The API key, for a client that can only send a URL "
        "(else `Authorization: Bearer <key>`); never logged.",
    ),
]


def read_key(api_key: ApiKeyParameter = None) -> None:
    """Declares ``api_key`` on a read route. The key itself is checked before the route
    runs, by the rate limiter (:mod:`api.ratelimit`), however it was sent."""


def optional_reader(request: Request, api_key: ApiKeyParameter = None) -> Principal | None:
    """The reader if a key was sent (401 if it is bad); ``None`` for anonymous reads,
    which ``require_read_key`` turns into 401."""
    key = presented_key(request)
    if key is None:
        if request.app.state.settings.require_read_key:
            raise Unauthenticated(
                "an API key is required (Authorization: Bearer <key>, or ?api_key=<key>)"
            )
        return None
    principal = _principal(request, key)
    if principal.role not in READER_ROLES:
        raise Forbidden("this key may not read")
    return principal


def audience(principal: Principal | None) -> Audience:
    """What a reader may see of contributors' trades (:mod:`publication.disclosure`)."""
    if principal is None:
        return PUBLIC
    if principal.role in ("admin", "auditor"):
        return Audience(everything=True)
    if principal.role == "exchange":
        return Audience(exchange=principal.exchange_code)
    return PUBLIC


ExchangePrincipal = Annotated[Principal, Depends(require_roles("exchange"))]
AdminPrincipal = Annotated[Principal, Depends(require_roles("admin"))]
OverseerPrincipal = Annotated[Principal, Depends(require_roles("admin", "auditor"))]
FeedReader = Annotated[Principal, Depends(require_roles("admin", "auditor", "exchange"))]
"""An operator (every exchange's feed) or an exchange (its own feed only)."""
"""Reads that only operators may make: an administrator, or an auditor (who writes nothing)."""
MetricsPrincipal = Annotated[Principal, Depends(require_roles("admin", "metrics"))]
ReaderPrincipal = Annotated[Principal, Depends(require_roles(*READER_ROLES))]
OptionalReader = Annotated[Principal | None, Depends(optional_reader)]
ReadKey = Depends(read_key)
"""``dependencies=[ReadKey]`` on a router of published data: ``api_key`` is a parameter of
each of its routes."""
