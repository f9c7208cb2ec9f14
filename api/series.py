"""Series answers, computed chunk by chunk so that no answer is ever held whole in memory.

A series is read from the database in date order (``asc`` or ``desc``) in partitions; each
partition passes through the frequency collapse and the transform, which carry the few
rows a later partition still needs (an unfinished period, the previous value), and comes
out as a Polars frame ready to be rendered. ``limit`` stops the reading early.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import polars as pl
from sqlalchemy import Integer, Select, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from store import models
from store.models import WITHDRAWN

Frequency = Literal["intraday", "daily", "weekly", "monthly", "quarterly", "annual"]
Transform = Literal["level", "change", "pct_change", "log_return", "rebase"]
Order = Literal["asc", "desc"]
Kind = Literal["index", "assessment"]

PERIOD = {"weekly": "1w", "monthly": "1mo", "quarterly": "1q", "annual": "1y"}
PARTITION_ROWS = 50_000
JULIAN_DAY_OF_EPOCH = 2440587.5
_KEY = "__period"
_PREVIOUS = "__previous"


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


def _table(kind: Kind):
    if kind == "index":
        return models.IndexValue, models.IndexValue.index_id, models.IndexValue.value
    return models.Assessment, models.Assessment.commodity_id, models.Assessment.price


def known_at(model, as_of: dt.datetime | None):
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


def _select(spec: SeriesSpec, *, descending: bool, day_numbers: bool = False) -> Select:
    """``day_numbers``: dates as days since 1970-01-01 (SQLite stores them as text)."""
    model, key, value = _table(spec.kind)
    day = model.date
    if day_numbers:
        day = cast(func.julianday(model.date) - JULIAN_DAY_OF_EPOCH, Integer).label("date")
    columns = [day, value.label("value"), model.status]
    if spec.kind == "assessment":
        columns += [model.trades, model.volume, model.high, model.low, model.fallback]
    columns.append(model.flags)
    conditions = [key == spec.key_id]
    if spec.start is not None:
        conditions.append(model.date >= spec.start)
    if spec.end is not None:
        conditions.append(model.date <= spec.end)
    if spec.frequency == "intraday":
        # Every provisional and final vintage at the instant it was published.
        columns.insert(0, model.published_at.label("time"))
        conditions.append(or_(model.status == "provisional", model.status == "final"))
        if spec.as_of is not None:
            conditions.append(model.published_at <= spec.as_of)
        order = [model.published_at, model.id]
    else:
        conditions.append(known_at(model, spec.as_of))
        order = [model.date]
    if descending:
        order = [o.desc() for o in order]
    return select(*columns).where(*conditions).order_by(*order)


def raw_schema(spec: SeriesSpec) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {}
    if spec.frequency == "intraday":
        schema["time"] = pl.Datetime("us", "UTC")
    schema |= {"date": pl.Date, "value": pl.Float64, "status": pl.String}
    if spec.kind == "assessment":
        schema |= {
            "trades": pl.Int64,
            "volume": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "fallback": pl.String,
        }
    schema["flags"] = pl.String
    return schema


def _driver_statement(statement: Select, dialect) -> tuple[str, tuple | dict]:
    """SQL and parameters for the driver itself, bound exactly as SQLAlchemy would bind them."""
    compiled = statement.compile(dialect=dialect)
    values = {}
    for name, value in compiled.construct_params().items():
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        values[name] = processor(value) if processor is not None and value is not None else value
    if compiled.positional:
        return compiled.string, tuple(values[name] for name in compiled.positiontup)
    return compiled.string, values


def read_partitions(
    session: Session, spec: SeriesSpec, *, descending: bool, rows: int = PARTITION_ROWS
) -> Iterator[pl.DataFrame]:
    """The stored points in order, ``rows`` at a time, straight from the driver's cursor.

    Rows go from the driver into Polars without a Python object per value on the way
    (SQLite's text dates become day numbers in SQL); PostgreSQL reads through a
    server-side cursor, so only one partition is ever in memory.
    """
    schema = raw_schema(spec)
    connection = session.connection()
    dialect = connection.dialect
    textual = dialect.name == "sqlite"
    statement = _select(spec, descending=descending, day_numbers=textual)
    sql, parameters = _driver_statement(statement, dialect)
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
            frame = pl.DataFrame(partition, schema=received, orient="row")
            yield frame.with_columns(parse) if parse else frame
    finally:
        cursor.close()


# -- collapse and transform ---------------------------------------------------------------


def output_schema(spec: SeriesSpec) -> dict[str, pl.DataType]:
    """Columns of every point, in order."""
    schema = raw_schema(spec)
    if spec.collapsed:
        schema |= {"open": pl.Float64, "high": pl.Float64, "low": pl.Float64, "close": pl.Float64}
        if spec.kind == "assessment":
            order = ["date", "value", "status", "trades", "volume", "fallback"]
            order += ["open", "high", "low", "close", "flags"]
            schema = {name: schema[name] for name in order}
    if spec.transform in ("change", "pct_change", "log_return"):
        for name in ("open", "close") if spec.kind == "assessment" else ("open", "high", "low"):
            schema.pop(name, None)
        schema.pop("close", None)
    return schema


def _collapse(frame: pl.DataFrame, spec: SeriesSpec) -> pl.DataFrame:
    """One row per period: the period's last value, with open/high/low/close."""
    first, last = (pl.last, pl.first) if spec.descending else (pl.first, pl.last)
    aggregations = [
        last("date").alias("date"),
        last("value").alias("value"),
        last("status").alias("status"),
        last("flags").alias("flags"),
        first("value").alias("open"),
        last("value").alias("close"),
    ]
    if spec.kind == "assessment":
        aggregations += [
            pl.col("trades").sum(),
            pl.col("volume").sum(),
            last("fallback").alias("fallback"),
            pl.col("high").max(),
            pl.col("low").min(),
        ]
    else:
        aggregations += [pl.col("value").max().alias("high"), pl.col("value").min().alias("low")]
    return frame.group_by(_KEY, maintain_order=True).agg(aggregations).drop(_KEY)


def _transformed(frame: pl.DataFrame, spec: SeriesSpec, base: float | None) -> pl.DataFrame:
    value = pl.col("value")
    if spec.transform == "rebase":
        factor = pl.lit(spec.rebase_to / base if base else None, dtype=pl.Float64)
        scaled = [c for c in ("value", "open", "high", "low", "close") if c in frame.columns]
        if spec.kind == "assessment":
            scaled = [c for c in scaled if c in ("value", "open", "close")]
        return frame.with_columns(pl.col(scaled) * factor)
    previous = pl.col(_PREVIOUS)
    if spec.transform == "change":
        new = value - previous
    elif spec.transform == "pct_change":
        new = (value / previous - 1.0) * 100.0
    else:
        new = (value / previous).log()
    return frame.with_columns(new.alias("value"))


class Pipeline:
    """Collapse, transform and limit, fed partition by partition in the answer's order."""

    def __init__(self, spec: SeriesSpec, base: float | None = None) -> None:
        self.spec = spec
        self.schema = output_schema(spec)
        self.base = base
        self.left = spec.limit
        self.pending_period: pl.DataFrame | None = None
        self.pending_previous: pl.DataFrame | None = None

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0

    def feed(self, frame: pl.DataFrame) -> pl.DataFrame:
        return self._emit(self._periods(frame, final=False))

    def finish(self) -> pl.DataFrame:
        rest = self._periods(None, final=True)
        return self._emit(rest, final=True)

    def _periods(self, frame: pl.DataFrame | None, *, final: bool) -> pl.DataFrame | None:
        if not self.spec.collapsed:
            return frame
        parts = [f for f in (self.pending_period, frame) if f is not None]
        if frame is not None:
            parts[-1] = frame.with_columns(
                pl.col("date").dt.truncate(PERIOD[self.spec.frequency]).alias(_KEY)
            )
        if not parts:
            return None
        rows = pl.concat(parts)
        if rows.is_empty():
            return None
        if final:
            self.pending_period = None
            return _collapse(rows, self.spec)
        open_period = rows[_KEY][-1]
        self.pending_period = rows.filter(pl.col(_KEY) == open_period)
        return _collapse(rows.filter(pl.col(_KEY) != open_period), self.spec)

    def _emit(self, frame: pl.DataFrame | None, *, final: bool = False) -> pl.DataFrame:
        out = self._transform(frame, final=final)
        if self.left is not None:
            out = out.head(max(self.left, 0))
            self.left -= out.height
        return out

    def _transform(self, frame: pl.DataFrame | None, *, final: bool) -> pl.DataFrame:
        spec = self.spec
        empty = pl.DataFrame(schema=self.schema)
        if frame is None or frame.is_empty():
            if final and self.pending_previous is not None and spec.descending:
                self.pending_previous = None  # the earliest point has no previous value
            return empty
        if spec.transform == "level":
            return frame if frame.columns == list(self.schema) else frame.select(list(self.schema))
        if spec.transform == "rebase":
            if self.base is None:
                priced = frame["value"].drop_nulls()
                self.base = float(priced[0]) if len(priced) else None
            return _transformed(frame, spec, self.base).select(list(self.schema))
        rows = frame if self.pending_previous is None else pl.concat([self.pending_previous, frame])
        shifted = pl.col("value").shift(-1 if spec.descending else 1).alias(_PREVIOUS)
        computed = _transformed(rows.with_columns(shifted), spec, None)
        self.pending_previous = rows.tail(1)
        computed = computed.head(-1) if spec.descending else computed.slice(1)
        return computed.select(list(self.schema))


def run(session: Session, spec: SeriesSpec, *, rows: int | None = None) -> Iterator[pl.DataFrame]:
    """The answer's points, partition by partition (each a frame of ``output_schema``)."""
    rows = rows or PARTITION_ROWS
    base = None
    if spec.transform == "rebase" and spec.descending:
        base = first_value(session, spec)
    pipeline = Pipeline(spec, base)
    if spec.limit is not None and not spec.collapsed:
        rows = max(2, min(rows, spec.limit + 2))
    for frame in read_partitions(session, spec, descending=spec.descending, rows=rows):
        out = pipeline.feed(frame)
        if out.height:
            yield out
        if pipeline.done:
            return
    out = pipeline.finish()
    if out.height:
        yield out


def first_value(session: Session, spec: SeriesSpec) -> float | None:
    """The chronologically first value of the answer (before any transform)."""
    ascending = replace(spec, order="asc", transform="level", limit=None)
    for frame in run(session, ascending):
        priced = frame["value"].drop_nulls()
        if len(priced):
            return float(priced[0])
    return None
