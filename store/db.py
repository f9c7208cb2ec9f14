"""Engines and session factories.

SQLite gets WAL, synchronous=FULL, a busy timeout and ``BEGIN IMMEDIATE`` write
transactions; PostgreSQL is used as it comes. Reads that must not hold SQLite's write lock
(a long export) go through the read engine, whose transactions begin ``DEFERRED``: under
WAL they see one snapshot and block no writer. On PostgreSQL the read engine is the
service engine. :func:`snapshot` gives the same on any session factory, for the reads an
ingest makes before its short write transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SNAPSHOT = "bcpi_snapshot"
"""Connection execution option: this transaction only reads (SQLite begins it DEFERRED)."""


def _prepare_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # pysqlite emits no BEGIN; "begin" below does
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        deferred = connection.get_execution_options().get(SNAPSHOT, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if deferred else "BEGIN IMMEDIATE")


def make_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        _prepare_sqlite(engine, busy_timeout_ms)
        return engine
    return create_engine(url, pool_pre_ping=True)


@functools.cache
def engine_for(url: str, busy_timeout_ms: int = 30_000) -> Engine:
    return make_engine(url, busy_timeout_ms=busy_timeout_ms)


@functools.cache
def read_engine_for(url: str, busy_timeout_ms: int = 30_000) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return engine_for(url, busy_timeout_ms)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN DEFERRED")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error."""
    with session_factory(engine).begin() as session:
        yield session


@contextmanager
def snapshot(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A read-only unit of work that takes no write lock: on SQLite its transaction begins
    ``DEFERRED`` and, under WAL, reads one snapshot while writers commit. Rolled back at the
    end; anything written in it is discarded."""
    with sessions() as session:
        session.connection(execution_options={SNAPSHOT: True})
        try:
            yield session
        finally:
            session.rollback()
