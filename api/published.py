"""Published index values read in ways one series is not: several indices at once in long
form, every vintage of a date range with its real-time period, and the newest value of a
status.

The long answers are written by :func:`api.formats.render` in every format, whole when
short and streamed when long (as a single series is), from one connection that holds one
snapshot of the database for the whole answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

import polars as pl
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from api.answers import read_snapshot, whole_or_streamed
from api.formats import EXTENSIONS, MEDIA_TYPES, Format, render
from api.schemas import LatestValue, Vintage, Vintages
from api.series import PARTITION_ROWS, SeriesSpec, known_at, run
from api.stored_values import standing_values
from core.errors import InvalidInput, UnknownIndex, UnknownIndices
from publication.review import flag_list
from store import models
from store.models import FINAL, FIXED, PROVISIONAL, RESTATED

EVERY_INDEX = "*"
MAX_CODES_LENGTH = 4000
"""Characters of ``codes=``: every code of the catalogue fits many times over."""

BULK_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date,
    "code": pl.String,
    "value": pl.Float64,
    "status": pl.String,
    "vintage": pl.Int64,
    "flags": pl.String,
}
OPEN_END = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
"""``realtime_end`` of a vintage still current: ALFRED's 9999-12-31."""
VINTAGE_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date,
    "vintage": pl.Int64,
    "value": pl.Float64,
    "status": pl.String,
    "realtime_start": pl.Datetime("us", "UTC"),
    "realtime_end": pl.Datetime("us", "UTC"),
    "methodology_version": pl.String,
    "inputs_hash": pl.String,
    "flags": pl.String,
}

LatestStatus = Literal["provisional", "final", "restated"]
LATEST_STATUSES: dict[str, tuple[str, ...]] = {
    PROVISIONAL: (PROVISIONAL,),
    FINAL: FIXED,  # a restated value is the day's final value, corrected
    RESTATED: (RESTATED,),
}


# -- several indices ----------------------------------------------------------------------


def requested_indices(session: Session, codes: str) -> list[tuple[str, int]]:
    """(code, id) of each index ``codes`` names (comma-separated, in the order given, each
    once), or of every index for ``*`` (by code)."""
    names = list(dict.fromkeys(c.strip() for c in codes.split(",") if c.strip()))
    table = models.IndexDefinition
    if names == [EVERY_INDEX]:
        return [
            tuple(row) for row in session.execute(select(table.code, table.id).order_by(table.code))
        ]
    if not names:
        raise InvalidInput("codes", "give index codes, comma-separated, or * for every index")
    if EVERY_INDEX in names:
        raise InvalidInput("codes", "* (every index) cannot be combined with codes")
    found = dict(session.execute(select(table.code, table.id).where(table.code.in_(names))).all())
    unknown = [name for name in names if name not in found]
    if len(unknown) == 1:
        raise UnknownIndex(unknown[0])
    if unknown:
        raise UnknownIndices(unknown)
    return [(name, found[name]) for name in names]


@dataclass(frozen=True)
class BulkRequest:
    indices: list[tuple[str, int]]
    start: dt.date | None
    end: dt.date | None
    as_of: dt.datetime | None
    limit: int | None


def _vintages_of(connection: Connection, key: int, frame: pl.DataFrame, as_of) -> pl.DataFrame:
    """The vintage number of each of ``frame``'s dates, as they stood at ``as_of``."""
    table = models.IndexValue
    rows = connection.execute(
        select(table.date, table.vintage).where(
            table.index_id == key,
            table.date >= frame["date"].min(),
            table.date <= frame["date"].max(),
            known_at(table, as_of),
        )
    ).all()
    return pl.DataFrame(
        [tuple(row) for row in rows],
        schema={"date": pl.Date, "vintage": pl.Int64},
        orient="row",
    )


def _index_frames(
    connection: Connection, key: int, asked: BulkRequest, limit: int | None
) -> Iterator[pl.DataFrame]:
    """One index's daily values in date order with each one's vintage: its standing series
    when the answer is of now, else its vintages as they stood at ``as_of``."""
    if asked.as_of is None:
        found = standing_values(connection, key, asked.start, asked.end)
        if found is not None:
            yield found
            return
    spec = SeriesSpec("index", key, start=asked.start, end=asked.end, as_of=asked.as_of)
    for frame in run(connection, spec if limit is None else replace(spec, limit=limit)):
        vintages = _vintages_of(connection, key, frame, asked.as_of)
        yield frame.join(vintages, on="date", how="left", maintain_order="left")


def bulk_frames(connection: Connection, asked: BulkRequest) -> Iterator[pl.DataFrame]:
    """Each index's daily values in turn (in date order), as each single series answers
    them, with the code and the vintage; at most ``limit`` rows in all."""
    left = asked.limit
    for code, key in asked.indices:
        for frame in _index_frames(connection, key, asked, left):
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            if frame.height:
                yield frame.with_columns(pl.lit(code).alias("code")).select(list(BULK_SCHEMA))
            if left is not None and left <= 0:
                return


def bulk_envelope(asked: BulkRequest) -> dict:
    return {
        "codes": [code for code, _ in asked.indices],
        "start": asked.start.isoformat() if asked.start else None,
        "end": asked.end.isoformat() if asked.end else None,
        "as_of": asked.as_of.isoformat() if asked.as_of else None,
    }


# -- vintages of a date range -------------------------------------------------------------


def vintage_frames(
    connection: Connection,
    key: int,
    start: dt.date | None,
    end: dt.date | None,
    as_of: dt.datetime | None,
    *,
    rows: int = PARTITION_ROWS,
) -> Iterator[pl.DataFrame]:
    """Every vintage of every date from ``start`` to ``end`` published by ``as_of``, by
    date and vintage, with its real-time period: ``realtime_start`` its publication
    instant, ``realtime_end`` the instant a later vintage replaced it, or :data:`OPEN_END`
    while it is current (at ``as_of``: a replacement after ``as_of`` had not happened)."""
    table = models.IndexValue
    query = select(
        table.date,
        table.vintage,
        table.value,
        table.status,
        table.published_at,
        table.superseded_at,
        table.methodology_version,
        table.inputs_hash,
        table.flags,
    ).where(table.index_id == key)
    if start is not None:
        query = query.where(table.date >= start)
    if end is not None:
        query = query.where(table.date <= end)
    if as_of is not None:
        query = query.where(table.published_at <= as_of)
    query = query.order_by(table.date, table.vintage)
    received = {
        **{name: VINTAGE_SCHEMA[name] for name in ("date", "vintage", "value", "status")},
        "realtime_start": VINTAGE_SCHEMA["realtime_start"],
        "superseded_at": VINTAGE_SCHEMA["realtime_end"],
        **{name: pl.String for name in ("methodology_version", "inputs_hash", "flags")},
    }
    superseded = pl.col("superseded_at")
    if as_of is not None:
        superseded = pl.when(superseded <= as_of).then(superseded)
    realtime_end = pl.coalesce(superseded, pl.lit(OPEN_END, dtype=VINTAGE_SCHEMA["realtime_end"]))
    result = connection.execution_options(yield_per=rows).execute(query)
    for partition in result.partitions(rows):
        frame = pl.DataFrame([tuple(row) for row in partition], schema=received, orient="row")
        yield frame.with_columns(realtime_end.alias("realtime_end")).select(list(VINTAGE_SCHEMA))


def vintage_envelope(code: str, start, end, as_of) -> dict:
    return {
        "code": code,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "as_of": as_of.isoformat() if as_of else None,
    }


def vintages_of_date(
    session: Session, definition: models.IndexDefinition, day: dt.date, as_of
) -> Vintages:
    """Every vintage of one date published by ``as_of``, as it was known then."""
    query = select(models.IndexValue).where(
        models.IndexValue.index_id == definition.id, models.IndexValue.date == day
    )
    if as_of is not None:
        query = query.where(models.IndexValue.published_at <= as_of)
    rows = session.scalars(query.order_by(models.IndexValue.vintage)).all()
    return Vintages(
        code=definition.code,
        date=day,
        as_of=as_of,
        vintages=[
            Vintage(
                vintage=row.vintage,
                date=row.date,
                value=row.value,
                status=row.status,
                methodology_version=row.methodology_version,
                inputs_hash=row.inputs_hash,
                published_at=row.published_at,
                flags=flag_list(row.flags),
                # What was known at as_of: a later supersession had not happened yet.
                superseded_at=None
                if row.superseded_at is None or (as_of is not None and row.superseded_at > as_of)
                else row.superseded_at,
            )
            for row in rows
        ],
    )


# -- the answer -----------------------------------------------------------------------------


def table_response(
    request: Request,
    fmt: Format,
    frames: Callable[[Connection], Iterator[pl.DataFrame]],
    schema: dict[str, pl.DataType],
    envelope: dict,
    name: str,
) -> Response:
    """``frames`` rendered in ``fmt``: whole if short, else streamed, read on a connection
    of its own that lives as long as the stream does and sees one snapshot throughout."""
    engine = request.app.state.read_engine

    def body():
        with read_snapshot(engine) as connection, connection.begin():
            yield from render(fmt, frames(connection), schema, envelope)

    headers = {"content-disposition": f'inline; filename="{name}.{EXTENSIONS[fmt]}"'}
    return whole_or_streamed(body(), MEDIA_TYPES[fmt], headers)


# -- the newest value of a status -----------------------------------------------------------


def latest_value(
    session: Session,
    definition: models.IndexDefinition,
    as_of=None,
    status: LatestStatus | None = None,
) -> LatestValue | None:
    """The newest value current at ``as_of``; with ``status``, the newest whose vintage has
    that status (``final``: final or restated)."""
    table = models.IndexValue
    query = select(table).where(table.index_id == definition.id, known_at(table, as_of))
    if status is not None:
        query = query.where(table.status.in_(LATEST_STATUSES[status]))
    row = session.scalars(query.order_by(table.date.desc()).limit(1)).first()
    if row is None:
        return None
    return LatestValue(
        code=definition.code,
        date=row.date,
        value=row.value,
        status=row.status,
        vintage=row.vintage,
        methodology_version=row.methodology_version,
        published_at=row.published_at,
        flags=flag_list(row.flags),
    )
