"""Alembic, driven from code: ``bcpi db upgrade`` and every service start call ``upgrade``."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LOCK_CLASS = 0x62637069  # "bcpi": the class of every PostgreSQL advisory lock bcpi takes


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def head_revisions() -> set[str]:
    """What ``alembic_version`` holds once every migration is applied: the heads, less any
    head another revision names in ``depends_on`` (Alembic does not record those)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    needed = set()
    for revision in script.walk_revisions():
        dependencies = revision.dependencies or ()
        needed |= {dependencies} if isinstance(dependencies, str) else set(dependencies)
    return set(script.get_heads()) - needed


LOCK_MIGRATION = 2


@contextmanager
def migration_lock(database_url: str, lock_url: str | None = None) -> Iterator[None]:
    """Hold while migrating, so replicas that start together migrate one at a time."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        import psycopg

        conninfo = make_url(lock_url or database_url).set(drivername="postgresql")
        with psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, LOCK_MIGRATION))
            yield
        return
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database + ".migrate-lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    yield
