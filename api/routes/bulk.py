"""Several indices in one answer, in long form."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.answers import SERIES_FORMATS
from api.auth import OptionalReader
from api.deps import ReadSessionDep
from api.formats import Format, negotiate
from api.params import MAX_LIMIT, AsOf, date_range, instant
from api.published import (
    BULK_SCHEMA,
    MAX_CODES_LENGTH,
    BulkRequest,
    bulk_envelope,
    bulk_frames,
    requested_indices,
    table_response,
)
from api.schemas import BulkSeries

router = APIRouter(prefix="/v1", tags=["indices"])


@router.get(
    "/series",
    response_model=BulkSeries,
    responses={
        **SERIES_FORMATS,
        401: {"description": "an unknown or revoked key, or none where reading needs one"},
        404: {"description": "a code that names no index"},
    },
    summary="Several indices' daily values in long form (date, code, value, status, vintage)",
)
def bulk_series(
    request: Request,
    session: ReadSessionDep,
    _reader: OptionalReader,
    codes: Annotated[
        str,
        Query(
            max_length=MAX_CODES_LENGTH,
            description="Comma-separated index codes, or `*` for every index",
        ),
    ],
    start: Annotated[dt.date | None, Query(description="First date, inclusive")] = None,
    end: Annotated[dt.date | None, Query(description="Last date, inclusive")] = None,
    as_of: AsOf = None,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_LIMIT, description="At most this many rows in all")
    ] = None,
    format: Annotated[
        Format | None,
        Query(description="Overrides Accept (as for series)"),
    ] = None,
):
    """Each index's values are those of its own series (`/indices/{code}/series`, daily
    levels) with the vintage that stood at `as_of`; the indices follow in the order of
    `codes` (by code for `*`), each one's dates in order."""
    date_range(start, end)
    asked = BulkRequest(
        indices=requested_indices(session, codes),
        start=start,
        end=end,
        as_of=instant("as_of", as_of),
        limit=limit,
    )
    return table_response(
        request,
        negotiate(format, request.headers.get("accept")),
        lambda connection: bulk_frames(connection, asked),
        BULK_SCHEMA,
        bulk_envelope(asked),
        "series",
    )
