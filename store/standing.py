"""The standing values of each index and commodity in one row (:class:`StandingSeries`).

A series answer without ``as_of`` wants exactly the vintages standing now: neither
superseded nor withdrawn, in date order. Read as one row per day that costs a Python
object per value; here the publishing transaction keeps them as one Arrow IPC file per
index or commodity, so the answer reads one row and decodes it in C.

:func:`take_in` brings a key's file up to date with the vintages added since it was
made (``id`` above its ``max_id``): those dates are replaced by their vintages that
stand, which also drops dates withdrawn since. A publishing transaction takes the
publication-state row lock before it writes a vintage, so its vintages have higher ids
than those of every publisher committed before it, and it takes them in after theirs.

:func:`standing` returns the file only when its ``max_id`` is the key's highest vintage
id: a vintage written any other way leaves the file incomplete, and the caller reads the
vintages themselves.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Iterable
from typing import Literal

import polars as pl
import pyarrow as pa
from sqlalchemy import Connection, Integer, String, bindparam, func, select
from sqlalchemy.orm import Session

from store import models
from store.models import WITHDRAWN, StandingSeries

Kind = Literal["index", "assessment"]
EXTRA = {
    "trades": pl.Int64,
    "volume": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "fallback": pl.String,
}
"""An assessment's columns besides its price, status and flags."""


def values_schema(kind: Kind) -> dict[str, pl.DataType]:
    """The columns of a series answer as stored, in order."""
    columns: dict[str, pl.DataType] = {"date": pl.Date, "value": pl.Float64, "status": pl.String}
    if kind == "assessment":
        columns |= EXTRA
    return columns | {"flags": pl.String}


def schema(kind: Kind) -> dict[str, pl.DataType]:
    """The columns of a standing series: the stored values and each one's vintage."""
    return values_schema(kind) | {"vintage": pl.Int64}


def vintages_of(kind: Kind):
    """The table of ``kind``'s vintages, its key column and its value column."""
    if kind == "index":
        return models.IndexValue, models.IndexValue.index_id, models.IndexValue.value
    return models.Assessment, models.Assessment.commodity_id, models.Assessment.price


def kind_of(model) -> Kind:
    return "index" if model is models.IndexValue else "assessment"


def _encode(frame: pl.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.write_ipc(sink, compression="uncompressed")
    return sink.getvalue()


def _decode(body: bytes) -> pl.DataFrame:
    # Through pyarrow: a tenth of the time of Polars' own reader on a small file.
    return pl.from_arrow(pa.ipc.open_file(pa.py_buffer(body)).read_all())


def _standing_statement(kind: Kind):
    model, key, _ = vintages_of(kind)
    newest = (
        select(func.max(model.id))
        .where(key == bindparam("key_id", type_=Integer))
        .scalar_subquery()
    )
    return select(StandingSeries.body, StandingSeries.max_id == newest).where(
        StandingSeries.kind == bindparam("kind", type_=String),
        StandingSeries.key_id == bindparam("key_id", type_=Integer),
    )


_STATEMENTS = {kind: _standing_statement(kind) for kind in ("index", "assessment")}


@functools.lru_cache(maxsize=16)
def _driver_sql(kind: Kind, dialect) -> tuple[str, tuple[str, ...] | None]:
    compiled = _STATEMENTS[kind].compile(dialect=dialect)
    return compiled.string, tuple(compiled.positiontup) if compiled.positional else None


def standing(connection: Connection, kind: Kind, key_id: int) -> pl.DataFrame | None:
    """The standing values of index or commodity ``key_id`` in date order (columns of
    :func:`schema`), or None when its file is missing or incomplete.

    Read through the driver's own cursor: the file is one value, and SQLAlchemy's result
    machinery would cost more than reading it."""
    sql, order = _driver_sql(kind, connection.dialect)
    given = {"kind": kind, "key_id": key_id}
    parameters = given if order is None else tuple(given[name] for name in order)
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, parameters)
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None or not row[1]:
        return None
    return _decode(row[0])


def take_in(session: Session, model, keys: Iterable[int], now: dt.datetime) -> None:
    """Bring the standing series of ``keys`` up to date with their vintages (see the
    module docstring); call it after the publication-state row is locked."""
    keys = sorted(set(keys))
    if not keys:
        return
    kind = kind_of(model)
    columns = schema(kind)
    _, key, value = vintages_of(kind)
    kept = {
        s.key_id: s
        for s in session.scalars(
            select(StandingSeries).where(
                StandingSeries.kind == kind, StandingSeries.key_id.in_(keys)
            )
        )
    }
    since = min((kept[k].max_id if k in kept else 0) for k in keys)
    chosen = [model.id, key.label("key"), model.date, value.label("value"), model.status]
    chosen += [getattr(model, name) for name in columns if name in EXTRA]
    chosen += [model.flags, model.vintage, model.superseded_at.is_(None).label("stands")]
    rows = session.execute(
        select(*chosen).where(key.in_(keys), model.id > since).order_by(model.id)
    ).all()
    added = pl.DataFrame(
        rows,
        schema={"id": pl.Int64, "key": pl.Int64, **columns, "stands": pl.Boolean},
        orient="row",
    )
    for key_id, vintages in added.group_by("key"):
        key_id = key_id[0]
        found = kept.get(key_id)
        if found is not None:
            vintages = vintages.filter(pl.col("id") > found.max_id)
        if vintages.is_empty():
            continue
        replaced = vintages["date"].unique()
        standing_now = vintages.filter(pl.col("stands") & (pl.col("status") != WITHDRAWN))
        parts = [standing_now.select(list(columns))]
        if found is not None:
            parts.insert(0, _decode(found.body).filter(~pl.col("date").is_in(replaced.implode())))
        body = _encode(pl.concat(parts).sort("date"))
        newest = int(vintages["id"].max())
        if found is None:
            session.add(
                StandingSeries(kind=kind, key_id=key_id, max_id=newest, body=body, updated_at=now)
            )
        else:
            found.max_id, found.body, found.updated_at = newest, body, now
    session.flush()
