"""Alembic, driven from code: ``bcpi db upgrade`` and every service start call ``upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


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
