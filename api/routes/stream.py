"""Live values: server-sent events with each newly published index value.

The stream polls the database (``publication_state.version`` first, so an idle poll is one
tiny query) and so sees what any process publishes: the scheduler's intraday provisional
values, the fixing's final values, restatements and withdrawals (a ``null`` value). Each
event's ``id`` is the vintage's id; a client that reconnects with ``Last-Event-ID``
receives what it missed.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine, func, select

from store import models
from store.models import PublicationState

router = APIRouter(prefix="/v1", tags=["live"])

BATCH = 1000


def _version(engine: Engine) -> int | None:
    with engine.connect() as connection:
        return connection.execute(
            select(PublicationState.version).where(PublicationState.id == 1)
        ).scalar()


def _newest_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.max(models.IndexValue.id))).scalar() or 0


def _published_after(engine: Engine, last_id: int, codes: list[str] | None) -> list[dict]:
    query = (
        select(
            models.IndexValue.id,
            models.IndexDefinition.code,
            models.IndexValue.date,
            models.IndexValue.value,
            models.IndexValue.status,
            models.IndexValue.vintage,
            models.IndexValue.published_at,
        )
        .join(models.IndexDefinition, models.IndexDefinition.id == models.IndexValue.index_id)
        .where(models.IndexValue.id > last_id)
        .order_by(models.IndexValue.id)
        .limit(BATCH)
    )
    if codes:
        query = query.where(models.IndexDefinition.code.in_(codes))
    with engine.connect() as connection:
        return [
            {
                "id": row.id,
                "code": row.code,
                "date": row.date.isoformat(),
                "value": row.value,
                "status": row.status,
                "vintage": row.vintage,
                "published_at": row.published_at.isoformat(),
            }
            for row in connection.execute(query)
        ]


def _event(value: dict) -> bytes:
    data = json.dumps({k: v for k, v in value.items() if k != "id"}, ensure_ascii=False)
    return f"id: {value['id']}\nevent: value\ndata: {data}\n\n".encode()


@router.get(
    "/stream",
    summary="Server-sent events: each new provisional, final, restated or withdrawn value",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    codes: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated index codes (all)")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="Close after this many events")
    ] = None,
    last_event_id: Annotated[
        int | None, Header(ge=0, le=2**62, description="Resume after this event id")
    ] = None,
) -> StreamingResponse:
    engine: Engine = request.app.state.read_engine
    settings = request.app.state.settings
    wanted = [c.strip() for c in codes.split(",") if c.strip()] if codes else None
    start = last_event_id
    if start is None:
        start = await anyio.to_thread.run_sync(_newest_id, engine)

    async def events():
        last_id, left, seen = start, limit, None
        quiet_since = time.monotonic()
        yield f"retry: {int(settings.stream_poll_seconds * 1000) + 1000}\n\n".encode()
        while left is None or left > 0:
            version = await anyio.to_thread.run_sync(_version, engine)
            if version != seen:
                values = await anyio.to_thread.run_sync(_published_after, engine, last_id, wanted)
                for value in values[:left] if left is not None else values:
                    yield _event(value)
                    quiet_since = time.monotonic()
                if values:
                    last_id = values[-1]["id"]
                    if left is not None:
                        left -= min(left, len(values))
                if len(values) < BATCH:
                    seen = version
                continue
            if time.monotonic() - quiet_since >= settings.stream_heartbeat_seconds:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            await anyio.sleep(settings.stream_poll_seconds)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
