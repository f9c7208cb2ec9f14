"""Idempotent inserts: ``INSERT … ON CONFLICT DO NOTHING`` and the trade fast path.

Trades go through the DBAPI connection of the session's own transaction (so they commit
or roll back with everything else): SQLite ``executemany`` of plain tuples; PostgreSQL
``COPY`` straight into ``trades`` inside a savepoint, falling back to ``COPY`` into a
temporary table plus ``INSERT … SELECT … ON CONFLICT DO NOTHING`` when a trade is already
stored (a re-sent batch). Both count exactly the rows inserted.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import polars as pl
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

TRADE_COLUMNS: tuple[str, ...] = (
    "exchange_id",
    "batch_id",
    "trade_id",
    "commodity_id",
    "traded_at",
    "price_raw",
    "quantity_raw",
    "currency_raw",
    "unit_raw",
    "price",
    "quantity",
    "attributes",
    "adjustments",
    "seq",
    "status",
    "hold_reason",
    "revision",
    "received_at",
    "buyer",
    "seller",
    "affiliated",
)
INSTANT_COLUMNS = ("traded_at", "received_at")
TRADE_KEY = ("exchange_id", "trade_id")
# SQLAlchemy's SQLite DateTime storage format (UTC wall time), so ORM reads agree.
_SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S%.6f"
_POSTGRES_INSTANT = "%Y-%m-%d %H:%M:%S%.6f+00:00"


def insert_ignoring_conflicts(
    session: Session, table: Table, rows: Sequence[dict], conflict_columns: Sequence[str]
) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
    statement = insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    session.execute(statement, list(rows))


def _driver_rows(frame: pl.DataFrame, instant_format: str) -> pl.DataFrame:
    """``frame`` with ``TRADE_COLUMNS`` in order, instants as the driver's text; an
    optional column the frame lacks is null."""
    missing = [c for c in TRADE_COLUMNS if c not in frame.columns]
    frame = frame.with_columns(pl.lit(None).alias(c) for c in missing)
    return frame.select(
        pl.col(c).dt.convert_time_zone("UTC").dt.strftime(instant_format)
        if c in INSTANT_COLUMNS and c not in missing
        else pl.col(c)
        for c in TRADE_COLUMNS
    )


def _insert_sqlite(cursor, frame: pl.DataFrame) -> int:
    columns = ", ".join(TRADE_COLUMNS)
    marks = ", ".join("?" * len(TRADE_COLUMNS))
    sql = (
        f"INSERT INTO trades ({columns}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(TRADE_KEY)}) DO NOTHING"
    )
    cursor.executemany(sql, _driver_rows(frame, _SQLITE_INSTANT).iter_rows())
    return max(cursor.rowcount, 0)


def _copy(cursor, table: str, frame: pl.DataFrame) -> int:
    buffer = io.BytesIO()
    _driver_rows(frame, _POSTGRES_INSTANT).write_csv(
        buffer, include_header=False, quote_style="necessary"
    )
    columns = ", ".join(TRADE_COLUMNS)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getbuffer())
    return frame.height


def _insert_postgres(cursor, frame: pl.DataFrame) -> int:
    import psycopg

    cursor.execute("SAVEPOINT trades_copy")
    try:
        inserted = _copy(cursor, "trades", frame)
    except psycopg.errors.UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT trades_copy")
    else:
        cursor.execute("RELEASE SAVEPOINT trades_copy")
        return inserted
    columns = ", ".join(TRADE_COLUMNS)
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS incoming_trades ON COMMIT DROP AS "
        f"SELECT {columns} FROM trades WITH NO DATA"
    )
    cursor.execute("TRUNCATE incoming_trades")
    _copy(cursor, "incoming_trades", frame)
    cursor.execute(
        f"INSERT INTO trades ({columns}) SELECT {columns} FROM incoming_trades "
        f"ON CONFLICT ({', '.join(TRADE_KEY)}) DO NOTHING"
    )
    inserted = cursor.rowcount
    cursor.execute("TRUNCATE incoming_trades")
    return inserted


def insert_trades(session: Session, frame: pl.DataFrame) -> int:
    """Insert the trades of ``frame`` (``TRADE_COLUMNS``; JSON columns as text); returns how
    many were new. Trades already stored (same exchange and trade id) are left untouched."""
    if frame.is_empty():
        return 0
    connection = session.connection()
    driver = connection.connection.driver_connection
    cursor = driver.cursor()
    try:
        if connection.dialect.name == "sqlite":
            return _insert_sqlite(cursor, frame)
        return _insert_postgres(cursor, frame)
    finally:
        cursor.close()
