"""Bring a database to the current schema, methodology versions and catalogue; every entry
point calls this."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from core.catalogue import Catalogue
from core.methodology import Methodology, in_force, registry
from store.db import session_scope
from store.methodology_versions import (
    hold_conflicting_shipped,
    load_versions,
    published_from,
    record_own,
    record_shipped,
)
from store.migrate import upgrade
from store.operator_log import note_calendar_overrides
from store.reference import sync_catalogue


def prepare_database(
    engine: Engine,
    catalogue: Catalogue,
    methodology: Methodology | None = None,
    *,
    calendar_file: Path | None = None,
) -> None:
    """Migrate; register the database's methodology versions in this process (recording
    the shipped ones it has not seen); then mirror the catalogue with the base and weights
    of ``methodology`` (default: the version in force).

    A ``methodology`` the database does not know is the deployment's own version: it is
    recorded (and in force as dated) unless values it would change are published already,
    which only ``bcpi methodology adopt --force`` may do. A new or changed calendar
    override file goes on the operator log.
    """
    upgrade(engine)
    try:
        with session_scope(engine) as session:
            record_shipped(session)
            load_versions(session)
            if methodology is None:
                hold_conflicting_shipped(session, catalogue)
            sync_catalogue(session, catalogue, methodology or in_force())
            if methodology is not None and methodology.version not in registry.registered():
                published = published_from(session, methodology.effective_from)
                if published is not None:
                    raise published.refusal(methodology)
                record_own(session, methodology)
                load_versions(session)
            if calendar_file is not None:
                note_calendar_overrides(session, calendar_file)
    except BaseException:
        registry.forget_adopted()
        raise
