"""Correction notices and incremental pulls: what changed since a given instant."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from sqlalchemy import and_, literal, or_, select, union_all

from api.deps import ReadSessionDep
from api.params import AsOf, instant
from api.schemas import Change, Changes, CorrectionNotice, Corrections
from bcpi.errors import InvalidRange
from store import models
from store.models_publication import Correction

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
    since, as_of = instant("since", since), instant("as_of", as_of)
    query = select(Correction, models.IndexDefinition.code).join(
        models.IndexDefinition, models.IndexDefinition.id == Correction.index_id
    )
    if since is not None:
        query = query.where(Correction.published_at >= since)
    if as_of is not None:
        query = query.where(Correction.published_at <= as_of)
    if index is not None:
        query = query.where(models.IndexDefinition.code == index)
    rows = session.execute(query.order_by(Correction.published_at, Correction.id)).all()
    return Corrections(
        since=since,
        corrections=[
            CorrectionNotice(
                index=code,
                date=row.date,
                old_value=row.old_value,
                new_value=row.new_value,
                old_vintage=row.old_vintage,
                new_vintage=row.new_vintage,
                reason=row.reason,
                published_at=row.published_at,
            )
            for row, code in rows
        ],
    )


def _published(kind: str, model, key, code_model, value, after, cursor, as_of):
    """Vintages of one table published after ``after`` (past ``cursor`` at that instant)."""
    if cursor is None:
        newer = model.published_at > after
    else:
        cursor_kind, cursor_id = cursor
        if kind > cursor_kind:
            newer = model.published_at >= after
        elif kind == cursor_kind:
            newer = or_(
                model.published_at > after,
                and_(model.published_at == after, model.id > cursor_id),
            )
        else:
            newer = model.published_at > after
    return (
        select(
            literal(kind).label("kind"),
            model.id.label("id"),
            code_model.code.label("code"),
            model.date.label("date"),
            value.label("value"),
            model.status.label("status"),
            model.vintage.label("vintage"),
            model.published_at.label("published_at"),
        )
        .join(code_model, code_model.id == key)
        .where(newer, *([model.published_at <= as_of] if as_of is not None else []))
    )


def _cursor(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    kind, _, number = text.partition(":")
    if kind not in ("index", "assessment") or not number.isdigit() or len(number) > 18:
        raise InvalidRange("cursor must be KIND:ID as given by `next`", field="cursor")
    return kind, int(number)


@router.get(
    "/changes",
    response_model=Changes,
    summary="Every vintage published after an instant (index values and assessments)",
)
def changes(
    session: ReadSessionDep,
    updated_after: Annotated[dt.datetime, Query(description="Vintages published after this")],
    kind: Annotated[Literal["all", "index", "assessment"], Query()] = "all",
    cursor: Annotated[
        str | None, Query(max_length=40, description="Paging: as given by `next`")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    as_of: AsOf = None,
) -> Changes:
    after = instant("updated_after", updated_after)
    as_of = instant("as_of", as_of)
    if after is None:
        raise InvalidRange("updated_after is required", field="updated_after")
    position = _cursor(cursor)
    parts = []
    if kind in ("all", "index"):
        parts.append(
            _published(
                "index",
                models.IndexValue,
                models.IndexValue.index_id,
                models.IndexDefinition,
                models.IndexValue.value,
                after,
                position,
                as_of,
            )
        )
    if kind in ("all", "assessment"):
        parts.append(
            _published(
                "assessment",
                models.Assessment,
                models.Assessment.commodity_id,
                models.Commodity,
                models.Assessment.price,
                after,
                position,
                as_of,
            )
        )
    union = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    rows = session.execute(
        select(union).order_by(union.c.published_at, union.c.kind, union.c.id).limit(limit + 1)
    ).all()
    page, more = rows[:limit], len(rows) > limit
    following = None
    if more:
        last = page[-1]
        following = "?" + urlencode(
            {
                "updated_after": last.published_at.isoformat(),
                "cursor": f"{last.kind}:{last.id}",
                "kind": kind,
                "limit": limit,
            }
        )
    return Changes(
        updated_after=after,
        changes=[
            Change(
                kind=row.kind,
                code=row.code,
                date=row.date,
                value=row.value,
                status=row.status,
                vintage=row.vintage,
                published_at=row.published_at,
            )
            for row in page
        ],
        next=following,
    )
