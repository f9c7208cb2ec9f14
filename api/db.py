"""The API's read engine.

On SQLite the service engine starts every transaction with ``BEGIN IMMEDIATE`` (the write
lock), which a long export must not hold. Reads go through a second engine whose
transactions begin ``DEFERRED``: under WAL they see one snapshot and block no writer.
PostgreSQL reads use the service engine as it is.
"""

from __future__ import annotations

import functools

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from store.db import engine_for


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
