"""Feed health and rejected rows: ``GET /v1/feeds/health`` and ``GET /v1/feeds/rejections``.

An exchange's key sees its own exchange only; an admin or auditor key sees every exchange
(the rejected rows of one at a time, named by ``exchange``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import FeedReader
from api.deps import CalendarDep, SessionDep, SettingsDep
from api.params import EARLIEST, LATEST
from core.errors import Forbidden, InvalidRange
from ingest.health import (
    MAX_REJECTIONS_SHOWN,
    FeedHealth,
    FeedRejections,
    feed_health,
    feed_rejections,
)
from store.reference import get_exchange

router = APIRouter(prefix="/v1/feeds", tags=["feeds"])
Day = Annotated[dt.date | None, Query(description="The day (default: today in the index's zone)")]
ACCESS = {
    401: {"description": "no API key, or an unknown or revoked one"},
    403: {"description": "a read or metrics key, or an exchange key naming another exchange"},
}


def _day(calendar, date: dt.date | None) -> dt.date:
    day = date or calendar.today()
    if not EARLIEST.date() <= day < LATEST.date():
        raise InvalidRange(f"date must be between {EARLIEST:%Y} and {LATEST:%Y}", field="date")
    return day


@router.get(
    "/health", response_model=FeedHealth, summary="Per-exchange feed health", responses=ACCESS
)
def health(
    principal: FeedReader, session: SessionDep, calendar: CalendarDep, date: Day = None
) -> FeedHealth:
    """For each exchange (an exchange's key: its own only): its last batch, and for the
    day's batches the rows received, accepted, duplicate, rejected (rate and reasons) and
    held, the trades stored, those for days outside the correction window, and gaps in the
    exchange's sequence numbers."""
    day = _day(calendar, date)
    return feed_health(session, calendar, day, exchange_id=principal.exchange_id)


@router.get(
    "/rejections",
    response_model=FeedRejections,
    summary="The day's rejected rows",
    responses={**ACCESS, 404: {"description": "no such exchange (operators' keys)"}},
)
def rejections(
    principal: FeedReader,
    session: SessionDep,
    calendar: CalendarDep,
    settings: SettingsDep,
    date: Day = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_REJECTIONS_SHOWN, description="Most rows to return")
    ] = 1000,
    exchange: Annotated[
        str | None,
        Query(
            description="Only this exchange (operators' keys: default every exchange; an"
            " exchange's key: its own only)"
        ),
    ] = None,
) -> FeedRejections:
    """The rejected rows of the batches received that day (an exchange's key: its own; an
    operator's: every exchange's, or the one named), in batch and row order: exchange,
    batch, row number (in the body or file), trade id, field, reason code and message.
    `rejected` counts them all, `shown` those returned; batches received before rejected
    rows were kept are listed in `unrecorded` with their counts by reason."""
    day = _day(calendar, date)
    exchange_id = principal.exchange_id
    if principal.role == "exchange":
        if exchange not in (None, principal.exchange_code):
            raise Forbidden(
                f"this key reads exchange {principal.exchange_code!r} only", field="exchange"
            )
    elif exchange is not None:
        exchange_id = get_exchange(session, exchange).id
    archive = settings.archive_dir
    return feed_rejections(session, calendar, archive, day, limit, exchange_id=exchange_id)
