"""Feed health for operators: ``GET /v1/feeds/health`` (admin key)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import OverseerPrincipal
from api.deps import CalendarDep, SessionDep
from api.params import EARLIEST, LATEST
from core.errors import InvalidRange
from ingest.health import FeedHealth, feed_health

router = APIRouter(prefix="/v1/feeds", tags=["feeds"])


@router.get("/health", response_model=FeedHealth, summary="Per-exchange feed health")
def health(
    _overseer: OverseerPrincipal,
    session: SessionDep,
    calendar: CalendarDep,
    date: Annotated[
        dt.date | None, Query(description="The day (default: today in the index's zone)")
    ] = None,
) -> FeedHealth:
    """For each exchange: its last batch, and for the day's batches the rows received,
    accepted, duplicate, rejected (rate and reasons) and held, the trades stored, and gaps
    in the exchange's sequence numbers."""
    day = date or calendar.today()
    if not EARLIEST.date() <= day < LATEST.date():
        raise InvalidRange(f"date must be between {EARLIEST:%Y} and {LATEST:%Y}", field="date")
    return feed_health(session, calendar, day)
