"""The database's own integrity check: SQLite ``PRAGMA integrity_check``; PostgreSQL
``amcheck`` (``bt_index_check`` with ``heapallindexed`` on every B-tree index and
``verify_heapam`` on every table of the schema)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url


@dataclass
class IntegrityResult:
    ok: bool
    checked: str  # what was checked
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None  # why a check could not run


def sqlite_integrity(database: str) -> IntegrityResult:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        rows = [r[0] for r in connection.execute("PRAGMA integrity_check").fetchall()]
    finally:
        connection.close()
    return IntegrityResult(rows == ["ok"], "PRAGMA integrity_check", [] if rows == ["ok"] else rows)


INDEXES = """
SELECT c.oid::regclass::text FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am a ON a.oid = c.relam
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.amname = 'btree' AND n.nspname = 'public' AND i.indisvalid AND i.indisready
ORDER BY 1
"""
TABLES = """
SELECT c.oid::regclass::text FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1
"""


def postgres_integrity(url: str) -> IntegrityResult:
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        available = connection.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'"
        ).fetchone()
        if available is None:
            return IntegrityResult(
                True, "none", skipped="the amcheck extension is not installed on this server"
            )
        connection.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        problems = []
        indexes = [r[0] for r in connection.execute(INDEXES)]
        for index in indexes:
            try:
                connection.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
            except psycopg.Error as exc:
                problems.append(f"index {index}: {exc}".strip())
        tables = [r[0] for r in connection.execute(TABLES)]
        for table in tables:
            for row in connection.execute(
                "SELECT blkno, offnum, msg FROM verify_heapam(%s::regclass)", (table,)
            ):
                problems.append(f"table {table} block {row[0]} item {row[1]}: {row[2]}")
    return IntegrityResult(
        not problems,
        f"amcheck bt_index_check(heapallindexed) on {len(indexes)} indexes, "
        f"verify_heapam on {len(tables)} tables",
        problems,
    )


def integrity_check(url: str) -> IntegrityResult:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sqlite_integrity(parsed.database)
    return postgres_integrity(url)
