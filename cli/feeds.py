"""``bcpi ingest``, ``bcpi fx load`` and ``bcpi generate``: trade feeds in.

Messages, the progress bar and the summary tables go to stderr; stdout stays free for
what a script captures.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from api.formats import FORMULA_START
from cli.common import DatabaseUrl, prepared, reports_errors, say
from cli.progress import err_console, progress
from core.catalogue import Catalogue
from core.methodology import in_force
from core.settings import Settings
from ingest.files import ingest_file
from ingest.fx import load_fx
from ingest.readers import feed_format, scan_feed
from ingest.results import IngestResult
from store.db import session_scope

fx_app = typer.Typer(help="The daily FX table used to normalise prices.", no_args_is_help=True)


def rejected_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejected.csv")


def defuse_formulas(path: Path) -> None:
    """Rewrite the CSV file ``path`` with every cell a spreadsheet would run as a formula
    (one starting with = + - @, a tab or a carriage return) prefixed with an apostrophe,
    as :func:`api.formats.safe_text` does for CSV answers; streamed, so any size fits."""
    names = pl.read_csv(path, n_rows=0, infer_schema=False).columns
    partial = path.with_name(path.name + ".partial")
    pl.scan_csv(path, infer_schema=False).with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in names
    ).sink_csv(partial)
    os.replace(partial, path)


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


def warning_lines(result: IngestResult) -> list[str]:
    """Each warning of an ingest, with the trade ids it names and how many it does not."""
    lines = []
    for warning in result.warnings:
        more = warning.count - len(warning.trade_ids)
        ids = ", ".join(warning.trade_ids) + (f" and {more:,} more" if more else "")
        lines.append(f"warning: {warning.message}; trade ids: {ids}")
    return lines


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
    console = console or err_console()
    results = []
    for path in files:
        path = Path(path)
        out = rejected_path(path)
        total = count_rows(path)
        with progress(f"ingest {path.name}", total=total, unit="rows", console=console) as job:
            result = ingest_file(
                engine,
                catalogue,
                path,
                exchange_code,
                settings=settings,
                rejected_path=out,
                progress=job.advance,
            )
        if result.rejected:
            defuse_formulas(out)
        console.print(summary_table(path.name, result, out))
        for line in warning_lines(result):
            console.print(line, highlight=False, soft_wrap=True)
        results.append(result)
    return results


@reports_errors
def ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet trade files.")],
    exchange: Annotated[str, typer.Option("--exchange", help="Code of the sending exchange.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Validate and store trade files of any size in committed batches, with a progress bar
    and a summary by reason code; rejected rows go to FILE.rejected.csv beside each."""
    ctx = prepared(database_url)
    ingest_files(ctx.engine, ctx.catalogue, ctx.settings, files, exchange)


@fx_app.command("load")
@reports_errors
def fx_load(
    file: Annotated[Path, typer.Argument(help="CSV: date,currency,cny_per_unit.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Load daily FX rates (CNY per unit of each currency); releases held trades."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        result = load_fx(session, ctx.catalogue, file, calendar=ctx.calendar)
    say(
        f"{file.name}: {result.inserted} rates loaded, {result.unchanged} already known;"
        f" {result.released} held trades released"
    )


def generate(
    out: Annotated[Path, typer.Option("--out", help="Directory for the feed files.")],
    days: Annotated[int, typer.Option(min=1, help="Trading days of data.")] = 250,
    start: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    file_format: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
    seed: int = 20250102,
) -> None:
    """Write synthetic trade feeds, one file per exchange."""
    from cli.synthetic import generate as write_feeds

    first = start.date() if start else in_force().family.base_date
    for path in write_feeds(out, start=first, days=days, seed=seed, file_format=file_format):
        typer.echo(str(path))
