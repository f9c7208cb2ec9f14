"""What the ``bcpi ingest`` and ``bcpi fx load`` commands do, with their terminal output.

Messages, the progress bar and the summary tables go to stderr; stdout stays free for
what a script captures.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy import Engine

from bcpi.catalogue import Catalogue
from bcpi.settings import Settings
from ingest.fx import FxLoadResult, load_fx
from ingest.readers import feed_format, scan_feed
from ingest.results import IngestResult
from ingest.service import ingest_file
from store.db import session_scope


def rejected_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejected.csv")


def count_rows(path: Path) -> int | None:
    """The file's row count, read cheaply (Parquet metadata; a streaming count for CSV)."""
    try:
        if feed_format(path) == "parquet":
            return pl.scan_parquet(path).select(pl.len()).collect().item()
        return scan_feed(path).select(pl.len()).collect(engine="streaming").item()
    except (pl.exceptions.PolarsError, OSError):
        return None  # the ingest itself reports why the file cannot be read


def summary_table(name: str, result: IngestResult, rejected_file: Path) -> Table:
    table = Table(title=f"{name}: {result.rows} rows in {len(result.batch_ids)} batch(es)")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for label, value in (
        ("accepted", result.accepted),
        ("  of which held (no FX rate yet)", result.held),
        ("  of which cancels", result.cancelled),
        ("  of which amends", result.amended),
        ("duplicates", result.duplicates),
        ("rejected", result.rejected),
    ):
        table.add_row(label, f"{value:,}")
    for code, count in sorted(result.by_reason.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(f"  {code}", f"{count:,}")
    if result.rejected:
        table.caption = f"rejected rows, with their reason: {rejected_file}"
    return table


def ingest_files(
    engine: Engine,
    catalogue: Catalogue,
    settings: Settings,
    files: list[Path],
    exchange_code: str,
    *,
    console: Console | None = None,
) -> list[IngestResult]:
    """Ingest each file in committed batches, with a progress bar and a summary table."""
    console = console or Console(stderr=True)
    results = []
    for path in files:
        path = Path(path)
        out = rejected_path(path)
        total = count_rows(path)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(path.name, total=total)
            result = ingest_file(
                engine,
                catalogue,
                path,
                exchange_code,
                settings=settings,
                rejected_path=out,
                progress=lambda rows, task=task: progress.advance(task, rows),
            )
        console.print(summary_table(path.name, result, out))
        results.append(result)
    return results


def load_fx_file(
    engine: Engine, catalogue: Catalogue, settings: Settings, path: Path
) -> FxLoadResult:
    with session_scope(engine) as session:
        return load_fx(session, catalogue, path, zone=settings.timezone)
