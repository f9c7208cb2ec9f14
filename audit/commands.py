"""What ``bcpi audit verify`` and ``bcpi audit replay`` do, with their terminal output.

Both print their findings to stdout and return the exit code: 0 when everything holds,
1 when something does not (each problem named), 2 for a usage error.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audit.chain import verify_chain
from audit.replay import ReplayReport, published_dates, replay
from bcpi.catalogue import Catalogue
from bcpi.settings import Settings

SHOWN_DIFFERENCES = 50


def verify_command(engine: Engine, settings: Settings) -> int:
    started = time.perf_counter()
    with Session(engine) as session:
        report = verify_chain(session, settings.archive_dir)
    seconds = time.perf_counter() - started
    for problem in report.problems:
        typer.echo(f"FAIL {problem}")
    typer.echo(
        f"{report.batches} batches, {report.links} links, {report.files} archive files "
        f"({report.bytes:,} bytes) re-hashed in {seconds:.1f}s"
    )
    typer.echo(f"chain head: link {report.head_seq} {report.head_hash}")
    if report.partial_files or report.unreferenced_files:
        typer.echo(
            f"note: {report.unreferenced_files} archived files name no batch (their batch was "
            f"refused or never committed) and {report.partial_files} partial files were left "
            "by interrupted writes (.incoming-*); neither is used, both are safe to delete"
            " (`bcpi audit clean` removes the partial files)"
        )
    if report.ok:
        typer.echo("audit verify: OK, every archived batch matches its hash and the chain holds")
        return 0
    typer.echo(f"audit verify: FAILED, {len(report.problems)} problem(s)")
    return 1


def print_replay(report: ReplayReport, seconds: float) -> None:
    for difference in report.differences[:SHOWN_DIFFERENCES]:
        typer.echo(f"DIFF {difference}")
    if len(report.differences) > SHOWN_DIFFERENCES:
        typer.echo(f"… and {len(report.differences) - SHOWN_DIFFERENCES} more differences")
    first = report.dates[0].isoformat() if report.dates else "-"
    last = report.dates[-1].isoformat() if report.dates else "-"
    share = 100.0 * report.identical / report.values if report.values else 0.0
    typer.echo(
        f"replayed {len(report.dates)} dates ({first}..{last}) from {report.batches} archived "
        f"batches and {report.computations} journaled computations in {seconds:.1f}s"
    )
    typer.echo(
        f"published values: {report.values}; bit-identical: {report.identical} ({share:.1f}%); "
        f"differences: {len(report.differences)}"
    )


def replay_command(
    engine: Engine,
    settings: Settings,
    catalogue: Catalogue,
    *,
    dates: list[dt.date] | None,
    index_code: str | None,
    workdir: Path | None,
) -> int:
    started = time.perf_counter()
    if dates is None:
        with Session(engine) as session:
            every = published_dates(session)
        if not every:
            typer.echo("audit replay: nothing has been published")
            return 1
    report = replay(
        engine,
        archive_dir=settings.archive_dir,
        catalogue=catalogue,
        settings=settings,
        dates=dates,
        index_code=index_code,
        workdir=workdir,
    )
    print_replay(report, time.perf_counter() - started)
    if report.values == 0:
        what = f" of {index_code}" if index_code else ""
        typer.echo(f"audit replay: no published value{what} on the dates asked")
        return 1
    if report.ok:
        typer.echo("audit replay: OK, every published value replayed bit-identical")
        return 0
    typer.echo("audit replay: DIFFERENCES found")
    return 1
