"""Series answers, computed chunk by chunk so that no answer is ever held whole in memory.

A series is read from the database in date order (``asc`` or ``desc``) in partitions; each
partition passes through the frequency collapse and the transform, which carry the few
rows a later partition still needs (an unfinished period, the previous value), and comes
out as a Polars frame ready to be rendered. ``limit`` stops the reading early.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import replace

import polars as pl
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api.stored_values import (
    PARTITION_ROWS,
    PERIOD,
    STEPS,
    Kind,
    SeriesSpec,
    identify,
    known_at,
    methodology_version,
    raw_schema,
    read_partitions,
)

_KEY = "__period"
_PREVIOUS = "__previous"

__all__ = [
    "PARTITION_ROWS",
    "Kind",
    "SeriesSpec",
    "first_value",
    "identify",
    "known_at",
    "methodology_version",
    "output_schema",
    "run",
]

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
    if spec.transform in STEPS:
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
    elif spec.transform in ("pct_change", "yoy"):
        new = (value / previous - 1.0) * 100.0
    else:
        new = (value / previous).log()
    return frame.with_columns(new.alias("value"))


# -- year on year -------------------------------------------------------------------------


def _period_number(frequency: str, *, year_before: bool = False) -> pl.Expr:
    """The period of ``date`` (or the same period a year before) as one number, so that
    periods compare and a year is a fixed step: ISO week 53 of a year a year later falls
    on the last week of the year before when that year has 52 weeks."""
    date = pl.col("date")
    back = 1 if year_before else 0
    if frequency == "weekly":
        year = date.dt.iso_year() - back
        week = date.dt.week().cast(pl.Int32)
        if year_before:
            last_week = pl.date(year, 12, 28).dt.week().cast(pl.Int32)
            week = pl.min_horizontal(week, last_week)
        return year.cast(pl.Int32) * 100 + week
    if frequency == "monthly":
        return (date.dt.year() - back).cast(pl.Int32) * 12 + date.dt.month().cast(pl.Int32)
    if frequency == "quarterly":
        return (date.dt.year() - back).cast(pl.Int32) * 4 + date.dt.quarter().cast(pl.Int32)
    return (date.dt.year() - back).cast(pl.Int32)


def _year_before(frame: pl.DataFrame, spec: SeriesSpec) -> pl.DataFrame:
    """``frame`` with the reference of each row under ``__period``: the day a year before
    (29 February: 28 February) or, collapsed, the same period's number a year before."""
    if spec.collapsed:
        return frame.with_columns(_period_number(spec.frequency, year_before=True).alias(_KEY))
    return frame.with_columns(pl.col("date").dt.offset_by("-1y").alias(_KEY))


def _with_references(targets: pl.DataFrame, pool: pl.DataFrame, spec: SeriesSpec):
    """``targets`` with the value a year before under ``__previous``, looked up in ``pool``
    (rows in reading order): the same period's value, or the value of the last day on or
    before the day a year before; null when ``pool`` holds none."""
    targets = _year_before(targets, spec)
    if spec.collapsed:
        keys = pool.select(_period_number(spec.frequency).alias(_KEY), pl.col("value"))
        previous = pl.col(_KEY).replace_strict(
            keys[_KEY], keys["value"], default=None, return_dtype=pl.Float64
        )
        return targets.with_columns(previous.alias(_PREVIOUS))
    known = pool.select(pl.col("date").alias(_KEY), pl.col("value").alias(_PREVIOUS))
    if spec.descending:
        known = known.reverse()
        joined = targets.reverse().join_asof(known, on=_KEY, strategy="backward")
        return joined.reverse()
    return targets.join_asof(known, on=_KEY, strategy="backward")


def _empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return _empty_of(tuple(schema.items()))


@functools.lru_cache(maxsize=64)
def _empty_of(columns: tuple[tuple[str, pl.DataType], ...]) -> pl.DataFrame:
    """An empty frame of these columns, made once (frames are never changed in place)."""
    return pl.DataFrame(schema=dict(columns))


class Pipeline:
    """Collapse, transform and limit, fed partition by partition in the answer's order."""

    def __init__(self, spec: SeriesSpec, base: float | None = None) -> None:
        self.spec = spec
        self.schema = output_schema(spec)
        self.base = base
        self.left = spec.limit
        self.pending_period: pl.DataFrame | None = None
        self.pending_previous: pl.DataFrame | None = None
        self.pool: pl.DataFrame | None = None

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
        columns = list(self.schema)
        if spec.transform == "yoy":
            return self._yoy(frame, final=final).select(columns)
        if frame is None or frame.is_empty():
            if final and self.pending_previous is not None and spec.descending:
                # The earliest point has no previous value: it is there, without one.
                last, self.pending_previous = self.pending_previous, None
                nothing = pl.lit(None, dtype=pl.Float64).alias(_PREVIOUS)
                return _transformed(last.with_columns(nothing), spec, None).select(columns)
            return _empty(self.schema)
        if spec.transform == "level":
            return frame if frame.columns == columns else frame.select(columns)
        if spec.transform == "rebase":
            if self.base is None:
                priced = frame["value"].drop_nulls()
                self.base = float(priced[0]) if len(priced) else None
            return _transformed(frame, spec, self.base).select(columns)
        first = self.pending_previous is None
        rows = frame if first else pl.concat([self.pending_previous, frame])
        shifted = pl.col("value").shift(-1 if spec.descending else 1).alias(_PREVIOUS)
        computed = _transformed(rows.with_columns(shifted), spec, None)
        self.pending_previous = None if final else rows.tail(1)
        if spec.descending and not final:
            computed = computed.head(-1)
        elif not spec.descending and not first:
            computed = computed.slice(1)
        return computed.select(columns)

    def _yoy(self, frame: pl.DataFrame | None, *, final: bool) -> pl.DataFrame:
        """Ascending, a point's reference was read before it: the rows of the last year
        are kept. Descending, it comes later: points wait until the rows read reach back
        to their reference (or the reading ends)."""
        spec = self.spec
        parts = [f for f in (self.pool, frame) if f is not None and not f.is_empty()]
        if not parts:
            return _empty(self.schema)
        pool = pl.concat(parts) if len(parts) > 1 else parts[0]
        if not spec.descending:
            seen = 0 if self.pool is None else self.pool.height
            out = _transformed(_with_references(pool.slice(seen), pool, spec), spec, None)
            # A later point's reference is on or after a year before the last row read:
            # keep that year and the row before it.
            cutoff = pool["date"][-1] - dt.timedelta(days=400)
            keep = max(pool["date"].search_sorted(cutoff) - 1, 0)
            self.pool = pool.slice(keep)
            return out
        referenced = _with_references(pool, pool, spec)
        if final:
            ready = pool.height
        elif spec.collapsed:
            oldest = pool.select(_period_number(spec.frequency)).to_series()[-1]
            ready = int((referenced[_KEY] >= oldest).sum())
        else:
            ready = int((referenced[_KEY] >= pool["date"][-1]).sum())
        self.pool = pool.slice(ready)
        return _transformed(referenced.head(ready), spec, None)


def run(
    source: Session | Connection, spec: SeriesSpec, *, rows: int | None = None
) -> Iterator[pl.DataFrame]:
    """The answer's points, partition by partition (each a frame of ``output_schema``)."""
    rows = rows or PARTITION_ROWS
    base = None
    if spec.transform == "rebase" and spec.descending:
        base = first_value(source, spec)
    pipeline = Pipeline(spec, base)
    if spec.limit is not None and not spec.collapsed and spec.transform != "yoy":
        rows = max(2, min(rows, spec.limit + 2))
    for frame in read_partitions(source, spec, descending=spec.descending, rows=rows):
        out = pipeline.feed(frame)
        if out.height:
            yield out
        if pipeline.done:
            return
    out = pipeline.finish()
    if out.height:
        yield out


def first_value(source: Session | Connection, spec: SeriesSpec) -> float | None:
    """The chronologically first value of the answer (before any transform)."""
    ascending = replace(spec, order="asc", transform="level", limit=None)
    for frame in run(source, ascending):
        priced = frame["value"].drop_nulls()
        if len(priced):
            return float(priced[0])
    return None
