"""Open a feed file as a LazyFrame with every column read as text (no type inference)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bcpi.errors import IngestError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def feed_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise IngestError(
            f"{path.name}: unsupported file type {path.suffix!r};"
            f" expected one of {sorted(FORMATS)}",
            path=str(path),
        ) from None


def scan_feed(path: Path) -> pl.LazyFrame:
    if not path.is_file():
        raise IngestError(f"{path}: no such file", path=str(path))
    if feed_format(path) == "csv":
        return pl.scan_csv(path, infer_schema=False)
    return pl.scan_parquet(path)
