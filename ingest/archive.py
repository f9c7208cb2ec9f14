"""Keep the raw bytes of every batch, content-addressed by SHA-256, durably on disk.

Layout: ``<archive_dir>/<exchange>/<sha256[:2]>/<sha256>.<format>``. A file is written to
a temporary name, flushed and fsynced, then renamed into place (and the directory
fsynced), so an archive path recorded in ``ingest_batches`` always names complete bytes.
Identical bytes share one file. HTTP bodies are archived after their Content-Encoding is
removed (the encoding is transport, the payload is what was received).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

COPY_CHUNK = 1 << 20
PARTIAL_PREFIX = ".incoming-"


@dataclass(frozen=True)
class Archived:
    sha256: str
    path: str  # relative to the archive directory
    size: int


def _folder(exchange_code: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", exchange_code) or "_"


def _relative(exchange_code: str, digest: str, suffix: str) -> Path:
    return Path(_folder(exchange_code)) / digest[:2] / f"{digest}.{suffix}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place(tmp: Path, dest: Path) -> None:
    if dest.exists():
        tmp.unlink()
        return
    os.replace(tmp, dest)
    _fsync_dir(dest.parent)


def archive_bytes(root: Path, exchange_code: str, data: bytes, suffix: str) -> Archived:
    digest = hashlib.sha256(data).hexdigest()
    relative = _relative(exchange_code, digest, suffix)
    dest = Path(root) / relative
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=PARTIAL_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            _place(Path(name), dest)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
    return Archived(digest, relative.as_posix(), len(data))


def archive_file(root: Path, exchange_code: str, source: Path, suffix: str) -> Archived:
    """Copy ``source`` into the archive while hashing it (one pass, bounded memory)."""
    incoming = Path(root) / _folder(exchange_code)
    incoming.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(dir=incoming, prefix=PARTIAL_PREFIX)
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
            while block := src.read(COPY_CHUNK):
                digest.update(block)
                out.write(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        relative = _relative(exchange_code, digest.hexdigest(), suffix)
        dest = Path(root) / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        _place(Path(name), dest)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Archived(digest.hexdigest(), relative.as_posix(), size)


def remove_partial_files(root: Path, older_than: dt.timedelta) -> list[Path]:
    """Delete the partial files (``.incoming-*``) a killed process left, once older than
    ``older_than`` (a write in progress keeps its file's modification time fresh). No batch
    ever names a partial file; completed archive files are never touched. Returns those
    removed."""
    root = Path(root)
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    removed = []
    for path in root.rglob(f"{PARTIAL_PREFIX}*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue  # renamed into place or removed meanwhile
    return removed
