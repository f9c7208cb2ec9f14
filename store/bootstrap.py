"""Bring a database to the current schema and catalogue; every entry point calls this."""

from __future__ import annotations

from sqlalchemy import Engine

from core.catalogue import Catalogue
from store.db import session_scope
from store.migrate import upgrade
from store.reference import sync_catalogue


def prepare_database(engine: Engine, catalogue: Catalogue) -> None:
    upgrade(engine)
    with session_scope(engine) as session:
        sync_catalogue(session, catalogue)
