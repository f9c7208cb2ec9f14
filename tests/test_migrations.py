"""The migrations build exactly the schema the models describe, on both databases, and
they import no application code: a revision carries the tables it needs, so a later change
of the models cannot change what an old revision does."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from alembic import command

from store.db import make_engine
from store.migrate import MIGRATIONS_DIR, alembic_config, current_revisions, head_revisions, upgrade
from store.models import metadata

ROOT = Path(__file__).resolve().parent.parent
# The top-level packages of the application (everything a revision must not import).
APPLICATION = sorted(
    p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"
)


def test_one_head_and_models_match_the_migrated_schema(database_url):
    assert len(head_revisions()) == 1
    engine = make_engine(database_url)
    upgrade(engine)
    assert current_revisions(engine) == head_revisions()
    engine.dispose()
    config = alembic_config(database_url)
    config.attributes["target_metadata"] = metadata
    command.check(config)  # raises if autogenerate finds a difference


def test_the_withdrawn_values_migration_makes_value_columns_nullable(database_url):
    """Migration 0008: a withdrawn vintage has no value, its correction no new value."""
    import sqlalchemy as sa

    engine = make_engine(database_url)
    upgrade(engine)
    columns = {
        table: {c["name"]: c for c in sa.inspect(engine).get_columns(table)}
        for table in ("index_values", "corrections")
    }
    engine.dispose()
    assert columns["index_values"]["value"]["nullable"] is True
    assert columns["corrections"]["new_value"]["nullable"] is True
    assert metadata.tables["index_values"].c.value.nullable is True
    assert metadata.tables["corrections"].c.new_value.nullable is True


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.add("." * node.level + (node.module or ""))
            else:
                names.add(node.module or "")
    return names


def test_migrations_import_no_application_code():
    assert {"core", "store", "ingest", "index", "api", "cli"} <= set(APPLICATION)
    files = [MIGRATIONS_DIR / "env.py", *sorted((MIGRATIONS_DIR / "versions").glob("*.py"))]
    assert len(files) > 8
    for path in files:
        for name in _imported_modules(path):
            top = name.split(".")[0]
            assert not name.startswith("."), f"{path.name} imports {name} relatively"
            assert top not in APPLICATION, f"{path.name} imports application module {name}"


def test_migrating_loads_no_application_module(tmp_path):
    """Run every migration in a fresh interpreter through Alembic alone (the script location
    and URL set by hand, no bcpi helper) and list the modules it loaded."""
    script = f"""
import sys
from alembic import command
from alembic.config import Config
config = Config()
config.set_main_option("script_location", {str(MIGRATIONS_DIR)!r})
config.set_main_option("sqlalchemy.url", {f"sqlite:///{tmp_path / 'fresh.db'}"!r})
command.upgrade(config, "heads")
print("\\n".join(sorted(sys.modules)))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "alembic" in loaded
    leaked = sorted(m for m in loaded if m.split(".")[0] in APPLICATION)
    assert leaked == []
