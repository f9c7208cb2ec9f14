"""A batch's status: ``GET /v1/batches/{batch_id}``.

A push through the feed log answers 202 with a batch id; this says whether that batch is
still ``queued``, ``stored`` (with the answer a direct push would have given) or ``dead``
(refused for a reason of its data, with the reason). The integer id of a batch stored
directly (a push without the feed log, a part of a file) gives its recorded counts. An
exchange's key sees its own batches only; an operator's key (admin, auditor) any. The push
itself, with the feed log, is :func:`queue_push` (``POST /v1/trades``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import FeedReader
from api.deps import SessionDep, SettingsDep
from core.faults import fault_point
from ingest.feed_log import FeedLog
from ingest.push import Answer, Pusher, ToQueue, check_for_queue
from ingest.queued import QUEUED, batch_status, stored_batch_status


@asynccontextmanager
async def _feed_log_closed(app: FastAPI) -> AsyncIterator[None]:
    """The process's connection to the feed log (opened by the first push) closed on
    shutdown."""
    yield
    feed_log = getattr(app.state, "feed_log", None)
    if feed_log is not None:
        await feed_log.close()


router = APIRouter(prefix="/v1/batches", tags=["feeds"], lifespan=_feed_log_closed)


class QueuedOut(BaseModel):
    """The answer to a push with the feed log: the batch is in the log (``queued``), or was
    sent before and is ``stored`` or ``dead`` already (``reason``)."""

    batch_id: str
    status: str
    reason: str | None = None
    rejected: int
    rejections: list[dict[str, Any]]
    by_reason: dict[str, int]
    warnings: list[dict[str, Any]]


async def queue_push(
    request: Request,
    pusher: Pusher,
    fmt: str,
    body: bytes,
    atomic: bool,
    idempotency_key: str | None,
) -> Answer:
    """``POST /v1/trades`` with the feed log: the batch checked and registered (in a worker
    thread), appended to the log (on the event loop, one connection per process), then
    answered 202."""
    state = request.app.state
    checked = await run_in_threadpool(
        check_for_queue,
        state.sessions,
        state.catalogue,
        state.settings,
        pusher,
        fmt,
        body,
        atomic=atomic,
        idempotency_key=idempotency_key,
    )
    if not isinstance(checked, ToQueue):
        return checked
    if checked.status == QUEUED:
        if getattr(state, "feed_log", None) is None:
            state.feed_log = FeedLog(state.settings)
        fault_point("before_publish")  # test-only (BCPI_FAULT_PLAN); inert otherwise
        await state.feed_log.publish(checked.message, checked.msg_id)
        fault_point("after_publish")
    return checked.accepted()


class BatchStatusOut(BaseModel):
    batch_id: str
    status: str
    """``queued``, ``stored`` or ``dead``."""
    exchange: str | None
    queued_at: dt.datetime | None
    settled_at: dt.datetime | None
    reason: str | None
    result: dict[str, Any] | None


@router.get(
    "/{batch_id}",
    response_model=BatchStatusOut,
    summary="A pushed batch's status",
    responses={
        401: {"description": "no API key, or an unknown or revoked one"},
        403: {"description": "a read or metrics key"},
        404: {"description": "no such batch of the key's exchange"},
    },
)
def get_batch(
    batch_id: str, principal: FeedReader, session: SessionDep, settings: SettingsDep
) -> BatchStatusOut:
    """The batch named by a push's answer: `queued` (on the feed log, not yet stored),
    `stored` (`result`: accepted, duplicates, rejected, held, cancelled, amended, the
    rejected rows and warnings, as a direct push answers) or `dead` (`reason`: why a
    consumer refused it; it is on the feed log's dead-letter subject)."""
    exchange_id = principal.exchange_id if principal.role == "exchange" else None
    if batch_id.isascii() and batch_id.isdigit() and len(batch_id) < 19:
        found = stored_batch_status(session, int(batch_id), exchange_id, settings.archive_dir)
    else:
        found = batch_status(session, batch_id, exchange_id)
    return BatchStatusOut(**found.__dict__)
