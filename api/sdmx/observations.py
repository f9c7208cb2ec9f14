"""The observations of the dataflow: published index values under the same vintage rules as
the ``/v1`` series (what stood at ``as_of``, withdrawn values omitted), each with its
SDMX observation status.

The status follows the value's vintage (final or restated: ``A``, provisional: ``P``); a
commodity index rests on its commodity's assessment alone, so an assessment carried
forward (``stale``) makes the value an estimate (``E``), and a day whose assessment is
suspended (the index publishes no value then) is an observation without a value (``M``).
Composite and sector values are ``A`` or ``P``: their methodology carries a constituent's
last level through its gaps, and their rationale says so.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from api.stored_values import known_at
from store import models
from store.models import PROVISIONAL

NORMAL, PROVISIONAL_VALUE, ESTIMATED, MISSING = "A", "P", "E", "M"
OBS_STATUS_NAMES = {
    NORMAL: "Normal value",
    ESTIMATED: "Estimated value",
    MISSING: "Missing value; data cannot exist",
    PROVISIONAL_VALUE: "Provisional value",
}
"""The codes of the SDMX cross-domain code list CL_OBS_STATUS that the observations carry."""


@dataclass(frozen=True)
class Observation:
    date: dt.date
    value: float | None
    status: str
    """An OBS_STATUS code."""


@dataclass(frozen=True)
class SeriesInfo:
    code: str
    name_en: str
    name_zh: str
    unit: str
    currency: str | None


@dataclass
class Series:
    info: SeriesInfo
    observations: list[Observation]


@dataclass(frozen=True)
class ObservationQuery:
    codes: frozenset[str] | None = None
    """Index codes (``None``: every index)."""
    start: dt.date | None = None
    end: dt.date | None = None
    as_of: dt.datetime | None = None
    updated_after: dt.datetime | None = None
    first_n: int | None = None
    last_n: int | None = None
    statuses: frozenset[str] | None = None
    """OBS_STATUS codes to keep (``None``: every one)."""


def index_infos(session: Session) -> list[SeriesInfo]:
    """Every index of the dataflow, composite first, with its unit and currency (the
    currency its constituents are priced in; none when they differ)."""
    currencies: dict[int, set[str]] = defaultdict(set)
    for index_id, currency in session.execute(
        select(models.IndexConstituent.index_id, models.Commodity.currency)
        .join(models.Commodity, models.Commodity.id == models.IndexConstituent.commodity_id)
        .distinct()
    ):
        currencies[index_id].add(currency)
    kinds = {"composite": 0, "sector": 1, "commodity": 2}
    rows = sorted(
        session.scalars(select(models.IndexDefinition)),
        key=lambda d: (kinds.get(d.kind, 3), d.id),
    )
    out = []
    for row in rows:
        found = currencies.get(row.id, set())
        currency = next(iter(found)) if len(found) == 1 else None
        out.append(SeriesInfo(row.code, row.name_en, row.name_zh, row.unit, currency))
    return out


def _status(status: str, fallback: str | None) -> str:
    if fallback == "suspended":
        return MISSING
    if fallback == "stale":
        return ESTIMATED
    return PROVISIONAL_VALUE if status == PROVISIONAL else NORMAL


def read_series(
    session: Session, query: ObservationQuery, infos: list[SeriesInfo] | None = None
) -> list[Series]:
    """The series that ``query`` selects and that have at least one observation, in the
    order of :func:`index_infos` (``infos``, when the caller has them)."""
    infos = index_infos(session) if infos is None else infos
    if query.codes is not None:
        infos = [i for i in infos if i.code in query.codes]
    if not infos:
        return []
    value, definition = models.IndexValue, models.IndexDefinition
    statement = (
        select(definition.code, value.date, value.value, value.status)
        .join(definition, definition.id == value.index_id)
        .where(known_at(value, query.as_of), *_bounds(value, query))
        .order_by(value.index_id, value.date)
    )
    if query.codes is not None:
        statement = statement.where(definition.code.in_(sorted(query.codes)))
    carried = {
        (code, day): (fallback, published_at)
        for code, day, fallback, published_at in session.execute(_carried(query))
    }
    found: dict[str, dict[dt.date, Observation]] = defaultdict(dict)
    for code, day, number, status in session.execute(statement):
        fallback = carried.get((code, day), (None, None))[0]
        code_status = _status(status, fallback)
        shown = None if code_status == MISSING else number
        found[code][day] = Observation(day, shown, code_status)
    updated_after = query.updated_after
    for (code, day), (fallback, published_at) in carried.items():
        if fallback == "suspended" and (updated_after is None or published_at > updated_after):
            found[code].setdefault(day, Observation(day, None, MISSING))
    out = []
    for info in infos:
        observations = [
            o
            for _, o in sorted(found.get(info.code, {}).items())
            if query.statuses is None or o.status in query.statuses
        ]
        if observations:
            limited = _first_and_last(observations, query.first_n, query.last_n)
            out.append(Series(info, limited))
    return out


def _bounds(model, query: ObservationQuery, *, updated: bool = True) -> list:
    conditions = []
    if query.start is not None:
        conditions.append(model.date >= query.start)
    if query.end is not None:
        conditions.append(model.date <= query.end)
    if updated and query.updated_after is not None:
        conditions.append(model.published_at > query.updated_after)
    return conditions


def _carried(query: ObservationQuery) -> Select:
    """(index code, date, fallback, published_at) of the commodity indices' days whose
    assessment is carried forward or suspended (on a suspended day the index publishes no
    value, and the observation says it is missing)."""
    assessment = models.Assessment
    definition = models.IndexDefinition
    statement = (
        select(definition.code, assessment.date, assessment.fallback, assessment.published_at)
        .join(models.Commodity, models.Commodity.id == assessment.commodity_id)
        .join(
            definition,
            and_(definition.code == models.Commodity.code, definition.kind == "commodity"),
        )
        .where(
            assessment.fallback.in_(("stale", "suspended")),
            known_at(assessment, query.as_of),
            *_bounds(assessment, query, updated=False),
        )
    )
    if query.codes is not None:
        statement = statement.where(definition.code.in_(sorted(query.codes)))
    return statement


def _first_and_last(items: list[Observation], first: int | None, last: int | None):
    """The first ``first`` and the last ``last`` observations (both: their union)."""
    if first is None and last is None:
        return items
    keep = set()
    if first is not None:
        keep.update(range(min(first, len(items))))
    if last is not None:
        keep.update(range(max(0, len(items) - last), len(items)))
    return [items[i] for i in sorted(keep)]
