"""Shared fixtures: a fresh database per test on SQLite and, where reachable, PostgreSQL.

Each fresh database is a copy of a template migrated once per test session (a file copy on
SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL), so tests start at the current
schema without paying for the migrations again.

PostgreSQL tests create and drop their own database on the server named by
``BCPI_TEST_POSTGRES_URL`` (default: the local server's ``test`` database). They skip with
the reason when the server is unreachable, unless ``BCPI_REQUIRE_POSTGRES=1`` (set by CI),
which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.catalogue import Catalogue, load_catalogue
from core.methodology import registry
from core.settings import Settings
from store.bootstrap import prepare_database
from store.db import make_engine
from store.migrate import upgrade

ADMIN_URL = os.environ.get("BCPI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("BCPI_REQUIRE_POSTGRES") == "1"


@pytest.fixture(autouse=True)
def _shipped_methodology_only() -> Iterator[None]:
    """Versions a test's database adopted stay with that test (the registry is per process)."""
    yield
    registry.forget_adopted()


def _postgres_unreachable_reason() -> str | None:
    try:
        import psycopg

        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect means: no server for these tests
        return f"PostgreSQL unreachable at {ADMIN_URL}: {exc.__class__.__name__}: {exc}"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    reason = _postgres_unreachable_reason()
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(f"BCPI_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    return ADMIN_URL


def _migrated(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _database_url(admin_url: str, name: str) -> str:
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"bcpi_template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        _migrated(_database_url(postgres_admin_url, name))
        yield name
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def postgres_url(postgres_admin_url: str, postgres_template: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"bcpi_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(postgres_template)
            )
        )
    try:
        yield _database_url(postgres_admin_url, name)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "bcpi.db"
    _migrated(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        for suffix in ("", "-wal"):
            if Path(f"{template}{suffix}").exists():
                shutil.copyfile(f"{template}{suffix}", tmp_path / f"bcpi.db{suffix}")
        return f"sqlite:///{tmp_path / 'bcpi.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue(Settings().catalogue_path)


@pytest.fixture
def engine(database_url: str, catalogue: Catalogue) -> Iterator[Engine]:
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    try:
        yield engine
    finally:
        engine.dispose()
