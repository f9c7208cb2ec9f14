"""Exchange trade push: ``POST /v1/trades`` and single-trade cancel, amend and lookup.

The body is read as it streams in, counting bytes (and decompressed bytes for gzip), so
an oversize body is refused with 413 without being read whole. Parsing, validation and
storage run in a worker thread; the answer is sent only after the transaction (batch,
trades, idempotency record) has committed and the raw bytes are archived on disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.concurrency import run_in_threadpool

from api.auth import ExchangePrincipal, Principal
from bcpi.errors import (
    IdempotencyConflict,
    IngestError,
    PayloadTooLarge,
    UnknownTrade,
    UnsupportedMediaType,
)
from ingest.archive import archive_bytes
from ingest.fields import ALL_FIELDS, NUMERIC_QUALITY_FIELDS, Reason
from ingest.readers import GzipLimiter, media_format, read_body
from ingest.service import BatchRejected, check_exchange_column, ingest_frame
from reliability.faults import acknowledge_before_commit, fault_point
from store import models
from store.models_feeds import IdempotencyRecord, TradeRevision

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
    },
}
FEED_SCHEMAS = {
    "application/json": {"type": "array", "items": {**TRADE_OBJECT, "required": ["trade_id"]}},
    "application/x-ndjson": {"type": "string"},
    "text/csv": {"type": "string"},
    "application/vnd.apache.parquet": {"type": "string", "format": "binary"},
    "application/vnd.apache.arrow.stream": {"type": "string", "format": "binary"},
}


class RejectionOut(BaseModel):
    row: int
    trade_id: str | None
    field: str
    code: str
    message: str


class IngestResponse(BaseModel):
    batch_id: int | None
    accepted: int
    duplicates: int
    rejected: int
    held: int
    cancelled: int
    amended: int
    rejections: list[RejectionOut]


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


def _request_hash(fmt: str, atomic: bool, body: bytes) -> str:
    digest = hashlib.sha256(f"POST /v1/trades\n{fmt}\natomic={atomic}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def _stored_answer(session, exchange_id: int, key: str, now: dt.datetime):
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.exchange_id == exchange_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at > now,
        )
    )


def _replay(record: IdempotencyRecord, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for a different payload; use a new key"
        )
    return Response(
        record.response_body,
        status_code=record.status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


def _rejected_answer(exc: BatchRejected) -> JSONResponse:
    return JSONResponse(
        {"error": "BatchRejected", "detail": {"message": exc.message, **exc.result.response()}},
        status_code=422,
    )


def _push(
    request: Request,
    principal: Principal,
    fmt: str,
    body: bytes,
    *,
    atomic: bool,
    idempotency_key: str | None,
) -> Response:
    state = request.app.state
    settings = state.settings
    now = dt.datetime.now(dt.UTC)
    request_hash = _request_hash(fmt, atomic, body)
    if idempotency_key is not None:
        with state.sessions() as session:
            record = _stored_answer(session, principal.exchange_id, idempotency_key, now)
            if record is not None:
                return _replay(record, request_hash)
    frame = read_body(body, fmt)
    if frame.height > settings.rows_per_batch:
        raise PayloadTooLarge(
            f"{frame.height} rows exceed the limit of {settings.rows_per_batch} rows per batch"
        )
    check_exchange_column(frame, principal.exchange_code)
    archived = archive_bytes(settings.archive_dir, principal.exchange_code, body, fmt)
    try:
        with state.sessions.begin() as session:
            result = ingest_frame(
                session,
                state.catalogue,
                frame,
                exchange_code=principal.exchange_code,
                source="http",
                fmt=fmt,
                sha256=archived.sha256,
                archive_path=archived.path,
                now=now,
                atomic=atomic,
                settings=settings,
            )
            answer = json.dumps(result.response(), separators=(",", ":"))
            if idempotency_key is not None:
                session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.exchange_id == principal.exchange_id,
                        IdempotencyRecord.expires_at <= now,
                    )
                )
                session.add(
                    IdempotencyRecord(
                        exchange_id=principal.exchange_id,
                        key=idempotency_key,
                        request_hash=request_hash,
                        status_code=200,
                        response_body=answer,
                        batch_id=result.batch_id,
                        created_at=now,
                        expires_at=now + settings.idempotency_ttl,
                    )
                )
                session.flush()
            acknowledge_before_commit(answer)  # test-only (BCPI_FAULT_*); inert otherwise
    except BatchRejected as exc:
        return _rejected_answer(exc)
    except IntegrityError:
        if idempotency_key is None:
            raise
        # The same key committed concurrently: answer as it was answered.
        with state.sessions() as session:
            record = _stored_answer(session, principal.exchange_id, idempotency_key, now)
        if record is None:
            raise
        return _replay(record, request_hash)
    fault_point("after_commit")  # test-only (BCPI_FAULT_POINT); inert otherwise
    return Response(answer, media_type="application/json")


def _transient(exc: OperationalError) -> bool:
    """A failure that another attempt may not meet: a deadlock or serialisation failure
    (PostgreSQL), a lock still held after the busy timeout (SQLite)."""
    name = type(exc.orig).__name__
    return name in ("DeadlockDetected", "SerializationFailure") or "locked" in str(exc.orig)


def _push_retrying(*args, **kwargs) -> Response:
    """:func:`_push`, tried again (at most twice) after a transient database failure; the
    batch is one transaction, so a failed attempt left nothing behind."""
    for attempt in range(3):
        try:
            return _push(*args, **kwargs)
        except OperationalError as exc:
            if attempt == 2 or not _transient(exc):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


@router.post(
    "",
    response_model=IngestResponse,
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
        409: {"description": "Idempotency-Key reused with a different payload"},
        413: {"description": "body or row count over the limit"},
        415: {"description": "unsupported Content-Type or Content-Encoding"},
        422: {"description": "body unreadable, or (atomic=true) some row invalid"},
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

    Formats by `Content-Type`: JSON array, NDJSON, CSV, Parquet, Arrow IPC stream;
    `Content-Encoding: gzip` accepted. Fields: `trade_id, commodity, traded_at, price,
    quantity, currency, unit`, optional quality attributes, `seq` and `action`
    (`new` | `cancel` | `amend`). Valid rows are committed durably before the answer;
    rejected rows come back with their row number, field and reason code.
    """
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise IngestError("Idempotency-Key must be 1 to 255 visible ASCII characters")
    fmt = media_format(request.headers.get("content-type"))
    body = await read_limited_body(request, request.app.state.settings.max_body_bytes)
    return await run_in_threadpool(
        _push_retrying,
        request,
        principal,
        fmt,
        body,
        atomic=atomic,
        idempotency_key=idempotency_key,
    )


def _single(request: Request, principal: Principal, row: dict[str, Any]) -> Response:
    """One cancel or amend through the batch path; 404 when the trade is not the key's."""
    state = request.app.state
    frame = pl.DataFrame([row], schema=dict.fromkeys(row, pl.String))
    body = json.dumps([row], separators=(",", ":"), sort_keys=True).encode()
    archived = archive_bytes(state.settings.archive_dir, principal.exchange_code, body, "json")
    try:
        with state.sessions.begin() as session:
            known = session.scalar(
                select(models.Trade.id).where(
                    models.Trade.exchange_id == principal.exchange_id,
                    models.Trade.trade_id == row["trade_id"],
                )
            )
            if known is None:
                raise UnknownTrade(row["trade_id"])
            result = ingest_frame(
                session,
                state.catalogue,
                frame,
                exchange_code=principal.exchange_code,
                source="http",
                fmt="json",
                sha256=archived.sha256,
                archive_path=archived.path,
                settings=state.settings,
            )
            if any(r.code == Reason.UNKNOWN_TRADE for r in result.rejections):
                raise UnknownTrade(row["trade_id"])
            if result.rejected:
                raise _Refused(result)
    except _Refused as refused:
        detail = {"message": "the trade is invalid", **refused.result.response()}
        return JSONResponse({"error": "TradeRejected", "detail": detail}, status_code=422)
    return JSONResponse(result.response())


class _Refused(Exception):
    """Rolls back a single-trade change whose row was rejected."""

    def __init__(self, result) -> None:
        super().__init__("rejected")
        self.result = result


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@router.delete("/{trade_id}", response_model=IngestResponse, summary="Cancel one trade")
async def cancel_trade(trade_id: str, request: Request, principal: ExchangePrincipal) -> Response:
    """Cancel a trade of the key's exchange (a repeated cancel is a duplicate)."""
    return await run_in_threadpool(
        _single, request, principal, {"trade_id": trade_id, "action": "cancel"}
    )


@router.put(
    "/{trade_id}",
    response_model=IngestResponse,
    summary="Amend one trade",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TRADE_OBJECT}},
        }
    },
    responses={
        413: {"description": "body over the limit"},
        415: {"description": "unsupported Content-Encoding"},
    },
)
async def amend_trade(trade_id: str, request: Request, principal: ExchangePrincipal) -> Response:
    """Replace a trade of the key's exchange by the corrected trade in the JSON body."""
    body = await read_limited_body(request, request.app.state.settings.max_body_bytes)
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
    return await run_in_threadpool(_single, request, principal, row)


@router.get("/{trade_id}", response_model=TradeOut, summary="One trade, as stored")
def get_trade(trade_id: str, request: Request, principal: ExchangePrincipal) -> TradeOut:
    """A trade of the key's exchange: raw and normalised values, adjustments, status and
    the history of its cancels and amends."""
    with request.app.state.sessions() as session:
        found = session.execute(
            select(models.Trade, models.Commodity.code)
            .join(models.Commodity, models.Commodity.id == models.Trade.commodity_id)
            .where(
                models.Trade.exchange_id == principal.exchange_id,
                models.Trade.trade_id == trade_id,
            )
        ).first()
        if found is None:
            raise UnknownTrade(trade_id)
        trade, code = found
        revisions = session.scalars(
            select(TradeRevision)
            .where(TradeRevision.trade_pk == trade.id)
            .order_by(TradeRevision.id)
        ).all()
        return TradeOut(
            trade_id=trade.trade_id,
            commodity=code,
            traded_at=trade.traded_at,
            status=trade.status,
            hold_reason=trade.hold_reason,
            price_raw=trade.price_raw,
            quantity_raw=trade.quantity_raw,
            currency_raw=trade.currency_raw,
            unit_raw=trade.unit_raw,
            price=trade.price,
            quantity=trade.quantity,
            attributes=trade.attributes,
            adjustments=trade.adjustments,
            seq=trade.seq,
            revision=trade.revision,
            batch_id=trade.batch_id,
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
