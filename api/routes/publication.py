"""Correction notices and incremental pulls: what changed since a given instant."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query

from api.deps import ReadSessionDep
from api.params import AsOf, instant
from api.schemas import AlertOut, Alerts, Changes, Corrections
from core.errors import InvalidRange
from publication.changes import Kind, changes_since
from publication.correction import published_notices
from publication.review import raised_alerts

router = APIRouter(prefix="/v1", tags=["publication"])

MAX_PAGE = 10_000


@router.get(
    "/corrections",
    response_model=Corrections,
    summary="Correction notices: restated values with old and new value and the reason",
)
def corrections(
    session: ReadSessionDep,
    since: Annotated[
        dt.datetime | None, Query(description="Notices published at or after this instant")
    ] = None,
    index: Annotated[str | None, Query(description="Only this index")] = None,
    as_of: AsOf = None,
) -> Corrections:
    since = instant("since", since)
    notices = published_notices(session, since=since, as_of=instant("as_of", as_of), index=index)
    return Corrections(since=since, corrections=notices)


@router.get(
    "/alerts",
    response_model=Alerts,
    summary="Values flagged review: a day-on-day move beyond the methodology's threshold",
)
def alerts(
    session: ReadSessionDep,
    since: Annotated[
        dt.datetime | None, Query(description="Alerts raised at or after this instant")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many")] = 1000,
) -> Alerts:
    since = instant("since", since)
    rows = raised_alerts(session, since=since, limit=limit)
    return Alerts(
        since=since, alerts=[AlertOut.model_validate(r, from_attributes=True) for r in rows]
    )


@router.get(
    "/changes",
    response_model=Changes,
    summary="Every vintage published after an instant (index values and assessments)",
)
def changes(
    session: ReadSessionDep,
    updated_after: Annotated[dt.datetime, Query(description="Vintages published after this")],
    kind: Annotated[Kind, Query()] = "all",
    cursor: Annotated[
        str | None, Query(max_length=40, description="Paging: as given by `next`")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    as_of: AsOf = None,
) -> Changes:
    after = instant("updated_after", updated_after)
    if after is None:
        raise InvalidRange("updated_after is required", field="updated_after")
    page, more = changes_since(
        session, after, kind=kind, cursor=cursor, limit=limit, as_of=instant("as_of", as_of)
    )
    following = None
    if more:
        last = page[-1]
        following = "?" + urlencode(
            {
                "updated_after": last.published_at.isoformat(),
                "cursor": last.cursor,
                "kind": kind,
                "limit": limit,
            }
        )
    return Changes(updated_after=after, changes=page, next=following)
