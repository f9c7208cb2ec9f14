"""Incremental pulls: every vintage published after an instant, in publication order, in
pages that a cursor continues (SDMX ``updatedAfter``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import and_, literal, or_, select, union_all
from sqlalchemy.orm import Session

from core.errors import InvalidRange
from store import models

Kind = Literal["all", "index", "assessment"]
SOURCES = {
    "index": (
        models.IndexValue,
        models.IndexValue.index_id,
        models.IndexDefinition,
        models.IndexValue.value,
    ),
    "assessment": (
        models.Assessment,
        models.Assessment.commodity_id,
        models.Commodity,
        models.Assessment.price,
    ),
}
"""Each kind of vintage: its table, the key to its owner, the owner's table, its value."""


@dataclass(frozen=True)
class Change:
    """One vintage published: ``id`` is its number (what a page's cursor continues from);
    ``value`` is ``None`` for a withdrawal or a suspended assessment."""

    kind: Literal["index", "assessment"]
    id: int
    code: str
    date: dt.date
    value: float | None
    status: str
    vintage: int
    published_at: dt.datetime

    @property
    def cursor(self) -> str:
        return f"{self.kind}:{self.id}"


def _vintages(kind: str, model, key, code_model, value, after, cursor, as_of):
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


def parse_cursor(text: str | None) -> tuple[str, int] | None:
    """``KIND:ID`` as a page's ``next`` gives it."""
    if text is None:
        return None
    kind, _, number = text.partition(":")
    if kind not in ("index", "assessment") or not number.isdigit() or len(number) > 18:
        raise InvalidRange("cursor must be KIND:ID as given by `next`", field="cursor")
    return kind, int(number)


def changes_since(
    session: Session,
    after: dt.datetime,
    *,
    kind: Kind = "all",
    cursor: str | None = None,
    limit: int = 1000,
    as_of: dt.datetime | None = None,
) -> tuple[list[Change], bool]:
    """A page of vintages published after ``after`` (past ``cursor``), and whether more
    follow."""
    position = parse_cursor(cursor)
    parts = [
        _vintages(name, model, key, owner, value, after, position, as_of)
        for name, (model, key, owner, value) in SOURCES.items()
        if kind in ("all", name)
    ]
    union = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    rows = session.execute(
        select(union).order_by(union.c.published_at, union.c.kind, union.c.id).limit(limit + 1)
    ).all()
    return [Change(*row) for row in rows[:limit]], len(rows) > limit
