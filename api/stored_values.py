"""Published values read from the store for a series: the vintage standing at ``as_of``,
in date order, partition by partition, as Polars columns (no ORM objects, one compiled
statement per query shape and dialect)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import polars as pl
from sqlalchemy import (
    Connection,
    Date,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from store import models
from store.models import WITHDRAWN
from store.standing import Kind, standing, values_schema, vintages_of

Frequency = Literal["intraday", "daily", "weekly", "monthly", "quarterly", "annual"]
Transform = Literal["level", "change", "pct_change", "log_return", "yoy", "rebase"]
Order = Literal["asc", "desc"]

STEPS = ("change", "pct_change", "log_return", "yoy")
"""Transforms of a value and an earlier one: a point without the earlier value is null."""
PERIOD = {"weekly": "1w", "monthly": "1mo", "quarterly": "1q", "annual": "1y"}
PARTITION_ROWS = 50_000
JULIAN_DAY_OF_EPOCH = 2440587.5


@dataclass(frozen=True)
class SeriesSpec:
    kind: Kind
    key_id: int
    start: dt.date | None = None
    end: dt.date | None = None
    frequency: Frequency = "daily"
    transform: Transform = "level"
    as_of: dt.datetime | None = None
    order: Order = "asc"
    limit: int | None = None
    rebase_to: float = 100.0

    @property
    def descending(self) -> bool:
        return self.order == "desc"

    @property
    def collapsed(self) -> bool:
        return self.frequency in PERIOD


# -- reading ----------------------------------------------------------------------------


def known_at(model, as_of):
    """The values that stood at ``as_of`` (now, when it is None): the vintages current
    then, less those that withdrew a value."""
    standing = model.status != WITHDRAWN
    if as_of is None:
        return and_(model.superseded_at.is_(None), standing)
    return and_(
        model.published_at <= as_of,
        or_(model.superseded_at.is_(None), model.superseded_at > as_of),
        standing,
    )


@dataclass(frozen=True)
class Shape:
    """What a series statement looks like, whatever the values bound into it."""

    kind: Kind
    intraday: bool
    start: bool
    end: bool
    as_of: bool
    descending: bool
    day_numbers: bool = False
    """Dates as days since 1970-01-01 (SQLite stores them as text)."""
    version_only: bool = False
    """Only the methodology version of the first row (the newest, in descending order)."""
    lookup: Literal["id", "code"] | None = None
    """The index or commodity itself, found by id or code, with the version above."""

    @classmethod
    def of(cls, spec: SeriesSpec, **fields) -> Shape:
        given = {
            "kind": spec.kind,
            "intraday": spec.frequency == "intraday",
            "start": spec.start is not None,
            "end": spec.end is not None,
            "as_of": spec.as_of is not None,
            "descending": spec.descending,
        }
        return cls(**(given | fields))


IDENTITY_COLUMNS = ("id", "code", "name_en", "name_zh", "unit")


def _identity(shape: Shape) -> Select:
    """The index's or commodity's identity, and the version of its newest value."""
    if shape.kind == "index":
        table = models.IndexDefinition
        extra = [table.started_on, table.base_date, table.base_value]
    else:
        table = models.Commodity
        extra = [table.currency]
    columns = [getattr(table, name) for name in IDENTITY_COLUMNS] + extra
    version = _select(replace(shape, lookup=None), key_id=table.id).scalar_subquery()
    if shape.lookup == "id":
        found = table.id == bindparam("key_id", type_=Integer)
    else:
        found = table.code == bindparam("code", type_=String)
    return select(*columns, version.label("methodology_version")).where(found)


def _select(shape: Shape, key_id=None) -> Select:
    if shape.lookup is not None:
        return _identity(shape)
    model, key, value = vintages_of(shape.kind)
    day = model.date
    if shape.day_numbers:
        day = cast(func.julianday(model.date) - JULIAN_DAY_OF_EPOCH, Integer).label("date")
    columns = [day, value.label("value"), model.status]
    if shape.kind == "assessment":
        columns += [model.trades, model.volume, model.high, model.low, model.fallback]
    columns.append(model.flags)
    as_of = bindparam("as_of", type_=model.published_at.type) if shape.as_of else None
    conditions = [key == (bindparam("key_id", type_=Integer) if key_id is None else key_id)]
    if shape.start:
        conditions.append(model.date >= bindparam("start", type_=Date))
    if shape.end:
        conditions.append(model.date <= bindparam("end", type_=Date))
    if shape.intraday:
        # Every provisional and final vintage at the instant it was published.
        columns.insert(0, model.published_at.label("time"))
        conditions.append(or_(model.status == "provisional", model.status == "final"))
        if as_of is not None:
            conditions.append(model.published_at <= as_of)
        order = [model.published_at, model.id]
    else:
        conditions.append(known_at(model, as_of))
        order = [model.date]
    if shape.descending:
        order = [o.desc() for o in order]
    if shape.version_only:
        columns = [model.methodology_version]
    statement = select(*columns).where(*conditions).order_by(*order)
    return statement.limit(1) if shape.version_only else statement


@functools.lru_cache(maxsize=1024)
def _prepared(shape: Shape, dialect) -> tuple[str, tuple[str, ...] | None, dict]:
    """The statement of ``shape`` compiled once per dialect: its SQL, the order of its
    positional parameters (None when they are named) and each parameter's bind processor
    and value (the constants of the statement; None for the values of a request)."""
    compiled = _select(shape).compile(dialect=dialect)
    defaults = compiled.construct_params(_check=False)
    parameters = {
        name: (bind.type.dialect_impl(dialect).bind_processor(dialect), defaults.get(name))
        for name, bind in compiled.binds.items()
    }
    order = tuple(compiled.positiontup) if compiled.positional else None
    return compiled.string, order, parameters


def _driver_statement(shape: Shape, spec: SeriesSpec, dialect, **given) -> tuple[str, tuple | dict]:
    """SQL and parameters for the driver itself, bound exactly as SQLAlchemy would bind them."""
    sql, order, parameters = _prepared(shape, dialect)
    given = {"start": spec.start, "end": spec.end, "as_of": spec.as_of, **given}
    given.setdefault("key_id", spec.key_id)
    values = {}
    for name, (processor, constant) in parameters.items():
        value = given.get(name, constant)
        values[name] = processor(value) if processor is not None and value is not None else value
    if order is not None:
        return sql, tuple(values[name] for name in order)
    return sql, values


def _connection(source: Session | Connection) -> Connection:
    return source.connection() if isinstance(source, Session) else source


def _fetch_one(connection: Connection, shape: Shape, spec: SeriesSpec, **given):
    sql, parameters = _driver_statement(shape, spec, connection.dialect, **given)
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchone()
    finally:
        cursor.close()


def methodology_version(source: Session | Connection, spec: SeriesSpec) -> str | None:
    """The methodology version of the newest value in the answer's date range, as it
    stood at ``as_of``."""
    shape = Shape.of(spec, descending=True, version_only=True)
    row = _fetch_one(_connection(source), shape, spec)
    return row[0] if row else None


def identify(
    source: Session | Connection, spec: SeriesSpec, *, code: str | None = None
) -> dict | None:
    """The index or commodity of ``spec`` (by its ``key_id``, or by ``code`` when given):
    id, code, names, unit and the index's base or the commodity's currency, with the
    ``methodology_version`` of the newest value of the answer; None if there is none.
    One statement, compiled once."""
    shape = Shape.of(spec, descending=True, version_only=True, lookup="code" if code else "id")
    row = _fetch_one(_connection(source), shape, spec, code=code)
    if row is None:
        return None
    names = list(IDENTITY_COLUMNS)
    names += ["started_on", "base_date", "base_value"] if spec.kind == "index" else ["currency"]
    found = dict(zip([*names, "methodology_version"], row, strict=True))
    if spec.kind == "index" and isinstance(found["base_date"], str):  # SQLite: text dates
        found["base_date"] = dt.date.fromisoformat(found["base_date"])
        if found["started_on"] is not None:
            found["started_on"] = dt.date.fromisoformat(found["started_on"])
    return found


def raw_schema(spec: SeriesSpec) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {}
    if spec.frequency == "intraday":
        schema["time"] = pl.Datetime("us", "UTC")
    return schema | values_schema(spec.kind)


def _columns(rows: list[tuple], schema: dict[str, pl.DataType], textual: bool) -> pl.DataFrame:
    """Rows as a frame, built column by column (twice as fast as row by row); SQLite's
    dates arrive as day numbers."""
    series = []
    for (name, dtype), values in zip(schema.items(), zip(*rows, strict=True), strict=True):
        if textual and dtype == pl.Date:
            series.append(pl.Series(name, values, dtype=pl.Int32).cast(pl.Date))
        else:
            series.append(pl.Series(name, values, dtype=dtype))
    return pl.DataFrame(series)


def read_partitions(
    source: Session | Connection, spec: SeriesSpec, *, descending: bool, rows: int = PARTITION_ROWS
) -> Iterator[pl.DataFrame]:
    """The stored points in order, ``rows`` at a time: the standing series' one row when
    the answer is of the values standing now (:mod:`store.standing`), else straight from
    the driver's cursor.

    Rows go from the driver into Polars without a Python object per value on the way
    (SQLite's text dates become day numbers in SQL); PostgreSQL reads through a
    server-side cursor, so only one partition is ever in memory. The statement is
    compiled once per shape (:func:`_prepared`).
    """
    connection = _connection(source)
    if spec.as_of is None and spec.frequency != "intraday":
        found = standing(connection, spec.kind, spec.key_id)
        if found is not None:
            found.drop_in_place("vintage")  # the frame is this request's own
            yield from _partitioned(_in_range(found, spec.start, spec.end), descending, rows)
            return
    schema = raw_schema(spec)
    dialect = connection.dialect
    textual = dialect.name == "sqlite"
    shape = Shape.of(spec, descending=descending, day_numbers=textual)
    sql, parameters = _driver_statement(shape, spec, dialect)
    driver = connection.connection.driver_connection
    # Dates arrive as day numbers, which Polars takes as dates; SQLite's text timestamps
    # (intraday ``time``) are parsed by Polars.
    received = {
        name: (pl.String if textual and isinstance(dtype, pl.Datetime) else dtype)
        for name, dtype in schema.items()
    }
    parse = [
        pl.col(name).str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC", time_unit="us")
        for name, dtype in schema.items()
        if textual and isinstance(dtype, pl.Datetime)
    ]
    cursor = driver.cursor(name=f"bcpi_series_{id(spec):x}") if not textual else driver.cursor()
    try:
        cursor.execute(sql, parameters)
        while True:
            partition = cursor.fetchmany(rows)
            if not partition:
                break
            frame = _columns(partition, received, textual)
            yield frame.with_columns(parse) if parse else frame
            if len(partition) < rows and textual:
                break  # SQLite: a short partition was the last one
    finally:
        cursor.close()


def _in_range(frame: pl.DataFrame, start: dt.date | None, end: dt.date | None) -> pl.DataFrame:
    """The rows of a frame in date order from ``start`` to ``end`` (each inclusive)."""
    dates = frame["date"]
    first = 0 if start is None else dates.search_sorted(start, side="left")
    last = frame.height if end is None else dates.search_sorted(end, side="right")
    return frame.slice(first, max(last - first, 0))


def _partitioned(frame: pl.DataFrame, descending: bool, rows: int) -> Iterator[pl.DataFrame]:
    if descending:
        frame = frame.reverse()
    for offset in range(0, frame.height, rows):
        yield frame.slice(offset, rows)


def standing_values(
    source: Session | Connection, key_id: int, start: dt.date | None, end: dt.date | None
) -> pl.DataFrame | None:
    """An index's values standing now from ``start`` to ``end``, with each one's vintage,
    in date order; None when its standing series is incomplete (read the vintages)."""
    found = standing(_connection(source), "index", key_id)
    return None if found is None else _in_range(found, start, end)
