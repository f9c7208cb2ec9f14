"""Backups that restore: a consistent snapshot of the database and the raw archive, with a
manifest of hashes, taken while the service runs.

The database is copied first (SQLite's online backup API, or ``pg_dump`` in its custom
format), then the archive. Every archived file is written before the transaction that
names it commits, so each batch in the snapshot has its file in the copy; files of pushes
that commit after the snapshot are copied too and name no batch there (``bcpi audit
verify`` counts them as unreferenced). A restore checks every hash of the manifest before
it writes anything, refuses a database that already holds tables, and copies the archive
back beside it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from core import __version__
from core.errors import BackupError

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"
ARCHIVE = "archive"
FORMAT = 1
_CHUNK = 2**20


@dataclass(frozen=True)
class BackupReport:
    """What a backup or a restore wrote: where, the database file, the archive's files."""

    directory: Path
    dialect: str
    database_bytes: int
    files: int
    archive_bytes: int
    seconds: float
    checked: dict[str, str] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _libpq_url(database_url: str) -> str:
    """The URL ``pg_dump`` and ``pg_restore`` read (no SQLAlchemy driver suffix)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored to")
    return Path(database)


def _dialect(database_url: str) -> str:
    backend = make_url(database_url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(
            f"cannot back up a {backend} database: sqlite and postgresql are supported",
            dialect=backend,
        )
    return backend


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackupError(
            f"{command[0]} is not installed: {what} needs the PostgreSQL client tools"
        ) from None
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip()}", command=command[0])


def _copy_database(database_url: str, target: Path) -> Path:
    if _dialect(database_url) == "sqlite":
        source = _sqlite_path(database_url)
        if not source.is_file():
            raise BackupError(f"no SQLite database at {source}", path=str(source))
        out = target / SQLITE_FILE
        with sqlite3.connect(source) as live, sqlite3.connect(out) as copy:
            live.backup(copy)  # one consistent snapshot, writers carry on
        copy.close()
        return out
    out = target / POSTGRES_FILE
    url = _libpq_url(database_url)
    _run(["pg_dump", "--format=custom", "--no-owner", f"--file={out}", url], "pg_dump")
    return out


def _copy_tree(source: Path, target: Path) -> dict[str, str]:
    """Every regular file under ``source`` (partial ``.incoming-*`` writes left out) copied
    under ``target``, by relative path, with its SHA-256."""
    hashes: dict[str, str] = {}
    if not source.is_dir():
        return hashes
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        if path.name.startswith(".incoming-"):
            continue
        relative = path.relative_to(source).as_posix()
        dest = target / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        hashes[relative] = sha256_of(dest)
    return hashes


def backup(database_url: str, archive_dir: Path, directory: Path) -> BackupReport:
    """A snapshot of the database and the archive into ``directory`` (new or empty)."""
    started = dt.datetime.now(dt.UTC)
    dialect = _dialect(database_url)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: a backup goes to a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    database = _copy_database(database_url, directory)
    files = _copy_tree(archive_dir, directory / ARCHIVE)
    manifest = {
        "format": FORMAT,
        "bcpi": __version__,
        "created_at": started.isoformat(),
        "dialect": dialect,
        "database": {"file": database.name, "sha256": sha256_of(database)},
        "archive": files,
    }
    written = directory / MANIFEST
    written.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    with open(written, "rb") as handle:
        os.fsync(handle.fileno())
    return BackupReport(
        directory=directory,
        dialect=dialect,
        database_bytes=database.stat().st_size,
        files=len(files),
        archive_bytes=sum((directory / ARCHIVE / f).stat().st_size for f in files),
        seconds=(dt.datetime.now(dt.UTC) - started).total_seconds(),
    )


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not path.is_file():
        raise BackupError(f"{directory} holds no {MANIFEST}: not a bcpi backup")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BackupError(f"{path} is not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"{path} has format {manifest.get('format')!r}; this version reads format {FORMAT}"
        )
    return manifest


def check_backup(directory: Path) -> dict:
    """The manifest, after every file it names was re-hashed and found equal."""
    manifest = read_manifest(directory)
    expected = {manifest["database"]["file"]: manifest["database"]["sha256"]}
    expected |= {f"{ARCHIVE}/{name}": digest for name, digest in manifest["archive"].items()}
    for relative, digest in expected.items():
        path = directory / relative
        if not path.is_file():
            raise BackupError(f"the backup is missing {relative}", file=relative)
        if sha256_of(path) != digest:
            raise BackupError(f"{relative} does not match the manifest's hash", file=relative)
    return manifest


def _refuse_occupied(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        tables = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            "the target database already holds tables; restore into a new, empty database",
            tables=len(tables),
        )


def restore(directory: Path, database_url: str, archive_dir: Path) -> BackupReport:
    """The deployment of ``directory`` rebuilt into an empty database and archive."""
    started = dt.datetime.now(dt.UTC)
    manifest = check_backup(directory)
    dialect = _dialect(database_url)
    if dialect != manifest["dialect"]:
        raise BackupError(
            f"the backup is of a {manifest['dialect']} database; restore it into"
            f" {manifest['dialect']}, not {dialect}",
            dialect=dialect,
        )
    if archive_dir.exists() and any(archive_dir.iterdir()):
        raise BackupError(f"the archive directory {archive_dir} is not empty")
    database = directory / manifest["database"]["file"]
    if dialect == "sqlite":
        target = _sqlite_path(database_url)
        if target.exists() and target.stat().st_size > 0:
            raise BackupError(f"{target} exists; restore into a new SQLite file")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(database, target)
    else:
        _refuse_occupied(database_url)
        url = _libpq_url(database_url)
        _run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={url}", str(database)],
            "pg_restore",
        )
    files = _copy_tree(directory / ARCHIVE, archive_dir)
    if files != manifest["archive"]:
        raise BackupError("the restored archive differs from the manifest")
    return BackupReport(
        directory=directory,
        dialect=dialect,
        database_bytes=database.stat().st_size,
        files=len(files),
        archive_bytes=sum((archive_dir / f).stat().st_size for f in files),
        seconds=(dt.datetime.now(dt.UTC) - started).total_seconds(),
        checked={"database": manifest["database"]["sha256"]},
    )
