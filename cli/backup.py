"""``bcpi backup`` and ``bcpi restore``: the database and the raw archive, with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import DatabaseUrl, reports_errors, say, settings_for
from store.backup import backup, restore


@reports_errors
def backup_command(
    directory: Annotated[Path, typer.Argument(help="A new (or empty) directory.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Write a consistent snapshot of the database (SQLite's online backup, or pg_dump)
    and of the raw archive into DIRECTORY, with a manifest of SHA-256 hashes. The service
    may keep running."""
    settings = settings_for(database_url)
    report = backup(settings.database_url, settings.archive_dir, directory)
    say(
        f"backup of the {report.dialect} database ({report.database_bytes:,} bytes) and"
        f" {report.files} archived files ({report.archive_bytes:,} bytes) in"
        f" {report.seconds:.1f}s: {directory}"
    )


@reports_errors
def restore_command(
    directory: Annotated[Path, typer.Argument(help="A directory written by bcpi backup.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Rebuild a deployment from DIRECTORY into an empty database (--database-url, or
    BCPI_DATABASE_URL) and the empty archive directory BCPI_ARCHIVE_DIR, after checking
    every hash of the manifest. Then run ``bcpi audit verify`` and ``bcpi audit replay``."""
    settings = settings_for(database_url)
    report = restore(directory, settings.database_url, settings.archive_dir)
    say(
        f"restored the {report.dialect} database and {report.files} archived files from"
        f" {directory} in {report.seconds:.1f}s; every hash of the manifest matched"
    )
