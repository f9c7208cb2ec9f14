"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic import command

from store.db import make_engine
from store.migrate import alembic_config, current_revisions, head_revisions, upgrade


def test_one_head_and_models_match_the_migrated_schema(database_url):
    assert len(head_revisions()) == 1
    engine = make_engine(database_url)
    upgrade(engine)
    assert current_revisions(engine) == head_revisions()
    engine.dispose()
    command.check(alembic_config(database_url))  # raises if autogenerate finds a difference
