"""Exchange trade push: ``POST /v1/trades`` and single-trade cancel, amend and lookup.

The body is read as it streams in, counting bytes (and decompressed bytes for gzip), so
an oversize body is refused with 413 without being read whole. The push service
(:mod:`ingest.push`) runs in a worker thread; its answer is sent only after the batch's
transaction has committed and the raw bytes are archived on disk.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import polars as pl
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import ExchangePrincipal, Principal
from api.deps import SessionDep
from api.routes.batches import QueuedOut, queue_push
from core.errors import BcpiError, IngestError, PayloadTooLarge, UnsupportedMediaType
from core.fields import (
    AFFILIATED_FIELD,
    ALL_FIELDS,
    MAX_TEXT_LENGTH,
    NUMERIC_QUALITY_FIELDS,
    PARTICIPANT_FIELDS,
)
from ingest.batch import check_exchange_column
from ingest.push import Answer, Pusher, push, revise
from ingest.readers import GzipLimiter, media_format
from ingest.results import IngestResult
from ingest.revisions import stored_trade

router = APIRouter(prefix="/v1/trades", tags=["trades"])

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
FEED_MEDIA_TYPES = {
    "application/json": "a JSON array of trade objects",
    "application/x-ndjson": "one trade object per line",
    "text/csv": "a header line, then one trade per line",
    "application/vnd.apache.parquet": "a Parquet file",
    "application/vnd.apache.arrow.stream": "an Arrow IPC stream",
}
_TEXT_OR_NUMBER = {"type": ["number", "string"]}
# A trade as a JSON object (documentation: rows are checked one by one, never by this).
TRADE_OBJECT = {
    "type": "object",
    "properties": {
        **{name: {"type": "string"} for name in ALL_FIELDS},
        **{name: _TEXT_OR_NUMBER for name in ("price", "quantity", *NUMERIC_QUALITY_FIELDS)},
        "trade_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "traded_at": {"type": ["string", "integer"]},
        "seq": {"type": ["integer", "string"]},
        "action": {"enum": ["new", "cancel", "amend"]},
        "exchange": {"type": "string", "description": "if given, the key's own exchange"},
        **{
            name: {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TEXT_LENGTH,
                "description": f"the {name}'s pseudonymous participant code (the exchange's own;"
                " shown to no one else)",
            }
            for name in PARTICIPANT_FIELDS
        },
        AFFILIATED_FIELD: {
            "type": ["boolean", "string", "integer"],
            "description": "buyer and seller belong to one group: true or false (or 1 or 0)",
        },
    },
}
FEED_SCHEMAS = {
    "application/json": {"type": "array", "items": {**TRADE_OBJECT, "required": ["trade_id"]}},
    "application/x-ndjson": {"type": "string"},
    "text/csv": {"type": "string"},
    "application/vnd.apache.parquet": {"type": "string", "format": "binary"},
    "application/vnd.apache.arrow.stream": {"type": "string", "format": "binary"},
}


class TradeOut(BaseModel):
    trade_id: str
    commodity: str
    traded_at: dt.datetime
    status: str
    hold_reason: str | None
    price_raw: float
    quantity_raw: float
    currency_raw: str
    unit_raw: str
    price: float | None
    quantity: float
    attributes: dict[str, Any] | None
    adjustments: dict[str, Any] | None
    seq: int | None
    buyer: str | None
    seller: str | None
    affiliated: bool | None
    received_at: dt.datetime | None
    revision: int
    batch_id: int
    revisions: list[dict[str, Any]]


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body with any gzip Content-Encoding removed; 413 past ``limit`` bytes either way."""
    length = request.headers.get("content-length")
    if length is not None and (not length.strip().isdigit() or int(length) > limit):
        raise PayloadTooLarge(f"body of {length} bytes exceeds the limit of {limit} bytes")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; use gzip")
    inflate = GzipLimiter(limit) if encoding in ("gzip", "x-gzip") else None
    parts: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        if inflate is not None:
            inflate.feed(chunk)
        else:
            parts.append(chunk)
    return inflate.finish() if inflate is not None else b"".join(parts)


class UploadTimeout(BcpiError):
    status_code = 408


class TooManyUploads(BcpiError):
    status_code = 429


UPLOAD_RETRY_SECONDS = 5


@asynccontextmanager
async def upload_slot(request: Request, principal: Principal) -> AsyncIterator[None]:
    """One of the key's ``uploads_per_key`` concurrent uploads (per process), else 429."""
    state = request.app.state
    limit = state.settings.uploads_per_key
    if not hasattr(state, "uploads"):
        state.uploads = {}
    uploads: dict[int, int] = state.uploads
    if limit and uploads.get(principal.key_id, 0) >= limit:
        raise TooManyUploads(
            f"this key is already sending {limit} bodies at once (uploads_per_key); retry"
            f" after {UPLOAD_RETRY_SECONDS} seconds",
            retry_after=UPLOAD_RETRY_SECONDS,
        )
    uploads[principal.key_id] = uploads.get(principal.key_id, 0) + 1
    try:
        yield
    finally:
        uploads[principal.key_id] -= 1
        if not uploads[principal.key_id]:
            del uploads[principal.key_id]


async def read_body_in_time(request: Request) -> bytes:
    """The body (:func:`read_limited_body`), or 408 if it takes longer than
    ``upload_timeout_seconds`` to arrive."""
    settings = request.app.state.settings
    try:
        with anyio.fail_after(settings.upload_timeout_seconds):
            return await read_limited_body(request, settings.max_body_bytes)
    except TimeoutError:
        raise UploadTimeout(
            f"the body did not arrive within {settings.upload_timeout_seconds:g} seconds"
            " (upload_timeout_seconds)"
        ) from None


def _pusher(principal: Principal) -> Pusher:
    return Pusher(principal.exchange_id, principal.exchange_code)


def _response(answer: Answer) -> Response:
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    if answer.retry_after:
        headers["Retry-After"] = str(answer.retry_after)
    return Response(
        answer.body, status_code=answer.status, media_type="application/json", headers=headers
    )


@router.post(
    "",
    response_model=IngestResult,
    summary="Push a batch of trades",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {**FEED_SCHEMAS[media], "description": d}}
                for media, d in FEED_MEDIA_TYPES.items()
            },
        }
    },
    responses={
        202: {
            "model": QueuedOut,
            "description": "with the feed log: the batch is queued (`GET /v1/batches/{id}`)",
        },
        200: {
            "links": {
                name: {
                    "operationId": operation,
                    "parameters": {"trade_id": "$request.body#/0/trade_id"},
                    "description": "the first trade of a JSON batch",
                }
                for name, operation in (
                    ("GetTrade", "get_trade_v1_trades__trade_id__get"),
                    ("AmendTrade", "amend_trade_v1_trades__trade_id__put"),
                    ("CancelTrade", "cancel_trade_v1_trades__trade_id__delete"),
                )
            }
        },
        401: {"description": "no API key, or an unknown or revoked one"},
        403: {"description": "not an exchange key, or rows naming another exchange"},
        408: {"description": "body not received within upload_timeout_seconds"},
        409: {"description": "Idempotency-Key reused with a different payload"},
        413: {"description": "body or row count over the limit"},
        415: {"description": "unsupported Content-Type or Content-Encoding"},
        422: {"description": "body unreadable, or (atomic=true) some row invalid"},
        429: {"description": "the key is sending uploads_per_key bodies already"},
        503: {"description": "the database is busy, or the feed log did not take the batch"},
    },
)
async def push_trades(
    request: Request,
    principal: ExchangePrincipal,
    atomic: Annotated[
        bool, Query(description="Reject the whole batch if any row is invalid.")
    ] = False,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Replays the first answer for the same payload (409 for another).",
        ),
    ] = None,
) -> Response:
    """Validate, normalise and store the trades of one batch for the key's exchange.

    With the feed log (`BCPI_FEED_LOG_URL`), the batch is checked the same way, then
    appended to the log: the answer is 202 `{batch_id, status, rejected, rejections}` once
    the log holds it, and `GET /v1/batches/{batch_id}` follows it until it is stored.

    Formats by `Content-Type`: JSON array, NDJSON, CSV, Parquet, Arrow IPC stream;
    `Content-Encoding: gzip` accepted. Fields: `trade_id, commodity, traded_at, price,
    quantity, currency, unit`, optional quality attributes, `seq`, `action`
    (`new` | `cancel` | `amend`), the participant codes `buyer` and `seller` and
    `affiliated`. Valid rows are committed durably before the answer;
    rejected rows come back with their row number, field and reason code. `warnings`
    names trades accepted for publication days before the correction window
    (`after_correction_window`: the first ids and how many): they change nothing published.
    """
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise IngestError("Idempotency-Key must be 1 to 255 visible ASCII characters")
    fmt = media_format(request.headers.get("content-type"))
    state = request.app.state
    async with upload_slot(request, principal):
        body = await read_body_in_time(request)
    if state.settings.feed_log_url:
        pusher = _pusher(principal)
        return _response(await queue_push(request, pusher, fmt, body, atomic, idempotency_key))
    answer = await run_in_threadpool(
        push,
        state.sessions,
        state.catalogue,
        state.settings,
        _pusher(principal),
        fmt,
        body,
        atomic=atomic,
        idempotency_key=idempotency_key,
    )
    return _response(answer)


def _known_or_raise(state: Any, principal: Principal, trade_id: str) -> None:
    """:class:`UnknownTrade` before anything is archived or stored (trades are never
    deleted, so a trade found here is still there when the change is stored)."""
    with state.sessions() as session:
        stored_trade(session, principal.exchange_id, trade_id)


def _without_batch(answer: Answer) -> Answer:
    """A refused change was rolled back: its answer names no batch."""
    if answer.status < 400:
        return answer
    payload = json.loads(answer.body)
    detail = payload.get("detail")
    if isinstance(detail, dict) and "batch_id" in detail:
        detail.update(batch_id=None, batch_ids=[])
    return Answer(answer.status, json.dumps(payload).encode(), answer.replayed)


async def _revise(request: Request, principal: Principal, row: dict[str, Any]) -> Response:
    state = request.app.state
    await run_in_threadpool(_known_or_raise, state, principal, row["trade_id"])
    answer = await run_in_threadpool(
        revise, state.sessions, state.catalogue, state.settings, _pusher(principal), row
    )
    return _response(_without_batch(answer))


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


# ``:path`` lets a trade id holding "/" be sent URL-encoded (%2F). The OpenAPI path has no
# convertor, so the key these operations need is declared here.
ONE_TRADE = "/{trade_id:path}"
ONE_TRADE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key, or an unknown or revoked one"},
    403: {"description": "not an exchange key"},
    404: {"description": "no such trade of the key's exchange"},
}
KEYED = {"security": [{"bearer": []}, {"apiKey": []}]}


@router.delete(
    ONE_TRADE,
    response_model=IngestResult,
    summary="Cancel one trade",
    responses=ONE_TRADE_ERRORS,
    openapi_extra=KEYED,
)
async def cancel_trade(trade_id: str, request: Request, principal: ExchangePrincipal) -> Response:
    """Cancel a trade of the key's exchange (a repeated cancel is a duplicate)."""
    return await _revise(request, principal, {"trade_id": trade_id, "action": "cancel"})


@router.put(
    ONE_TRADE,
    response_model=IngestResult,
    summary="Amend one trade",
    openapi_extra={
        **KEYED,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TRADE_OBJECT}},
        },
    },
    responses={
        **ONE_TRADE_ERRORS,
        403: {"description": "not an exchange key, or a body naming another exchange"},
        408: {"description": "body not received within upload_timeout_seconds"},
        413: {"description": "body over the limit"},
        415: {"description": "unsupported Content-Encoding"},
        429: {"description": "the key is sending uploads_per_key bodies already"},
    },
)
async def amend_trade(trade_id: str, request: Request, principal: ExchangePrincipal) -> Response:
    """Replace a trade of the key's exchange by the corrected trade in the JSON body."""
    async with upload_slot(request, principal):
        body = await read_body_in_time(request)
    try:
        trade = json.loads(body, parse_float=str, parse_int=str, parse_constant=str)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise IngestError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(trade, dict):
        raise IngestError("body must be one JSON object: the corrected trade")
    if trade.get("trade_id") not in (None, trade_id):
        raise IngestError("trade_id in the body differs from the one in the path")
    row = {name: _text(trade.get(name)) for name in ALL_FIELDS if name in trade}
    row.update(trade_id=trade_id, action="amend")
    if "exchange" in trade:
        row["exchange"] = _text(trade["exchange"])
        check_exchange_column(pl.DataFrame([row]), principal.exchange_code)
        del row["exchange"]
    return await _revise(request, principal, row)


@router.get(
    ONE_TRADE,
    response_model=TradeOut,
    summary="One trade, as stored",
    responses=ONE_TRADE_ERRORS,
    openapi_extra=KEYED,
)
def get_trade(trade_id: str, session: SessionDep, principal: ExchangePrincipal) -> TradeOut:
    """A trade of the key's exchange: raw and normalised values, adjustments, status, its
    participant codes, when it was received and the history of its cancels and amends.
    Participant codes are shown here, to their exchange, and nowhere else."""
    trade, code, revisions = stored_trade(session, principal.exchange_id, trade_id)
    return TradeOut(
        **{name: getattr(trade, name) for name in TradeOut.model_fields if hasattr(trade, name)},
        commodity=code,
        revisions=[
            {
                "action": r.action,
                "revised_at": r.revised_at.isoformat(),
                "batch_id": r.batch_id,
                "seq": r.seq,
                "previous": r.previous,
            }
            for r in revisions
        ],
    )
