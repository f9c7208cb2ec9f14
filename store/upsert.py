"""``INSERT … ON CONFLICT DO NOTHING`` for the two supported dialects."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(
    session: Session, table: Table, rows: Sequence[dict], conflict_columns: Sequence[str]
) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
    statement = insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    session.execute(statement, list(rows))
