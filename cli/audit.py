"""``bcpi audit``: verify the archive's hash chain, replay published values, clean up.

Verify and replay print their findings to stdout and exit 0 when everything holds, 1 when
something does not (each problem named), 2 for a usage error.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audit.chain import verify_chain
from audit.replay import ReplayReport, published_dates, replay
from audit.stored_trades import rebuild_trades
from cli.common import DatabaseUrl, fail, prepared, say, settings_for
from cli.progress import progress
from core.catalogue import Catalogue, load_catalogue
from core.settings import Settings, get_settings
from ingest.archive import remove_partial_files
from store.db import read_engine_for

SHOWN_DIFFERENCES = 50

audit_app = typer.Typer(
    help="Audit: the archive's hash chain; replays of published values.", no_args_is_help=True
)


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
    typer.echo(f"operator log: {report.operator_acts} entries re-hashed")
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
    with progress("audit replay") as job:
        which = f"{len(dates)} date(s)" if dates else "every published date"
        job.phase(f"{which}: the archive fed through a scratch database")
        report = replay(
            engine,
            archive_dir=settings.archive_dir,
            catalogue=catalogue,
            settings=settings,
            dates=dates,
            index_code=index_code,
            workdir=workdir,
            steps=job,
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


@audit_app.command("verify")
def audit_verify(
    database_url: DatabaseUrl = None,
    trades: Annotated[
        bool,
        typer.Option(
            "--trades/--no-trades",
            help="Also rebuild every stored trade from the archive and compare (default).",
        ),
    ] = True,
) -> None:
    """Re-hash every archived batch and walk the hash chain; name every batch that fails.
    Then rebuild every trade from the archived batches and FX loads and name every stored
    trade that differs from its rebuilt twin (a row edited behind the service's back)."""
    ctx = prepared(database_url)
    code = verify_command(ctx.engine, ctx.settings)
    if trades:
        code = max(code, verify_trades(ctx.engine, ctx.settings))
    raise typer.Exit(code=code)


def verify_trades(engine: Engine, settings: Settings) -> int:
    started = time.perf_counter()
    report = rebuild_trades(
        engine,
        archive_dir=settings.archive_dir,
        catalogue=load_catalogue(settings.catalogue_path),
        settings=settings,
    )
    seconds = time.perf_counter() - started
    for difference in report.differences[:SHOWN_DIFFERENCES]:
        if difference.what == "trade":
            typer.echo(
                f"FAIL trade {difference.code}: {difference.field}: stored "
                f"{difference.published!r}, the archive gives {difference.replayed!r}"
            )
        else:
            typer.echo(f"FAIL {difference}")
    if len(report.differences) > SHOWN_DIFFERENCES:
        typer.echo(f"… and {len(report.differences) - SHOWN_DIFFERENCES} more")
    typer.echo(
        f"{report.values} stored trades rebuilt from {report.batches} archived batches "
        f"in {seconds:.1f}s"
    )
    if not report.differences:
        typer.echo("audit verify: OK, every stored trade is what its archived batches give")
        return 0
    typer.echo(f"audit verify: FAILED, {len(report.differences)} trade difference(s)")
    return 1


@audit_app.command("clean")
def audit_clean(
    older_than: Annotated[
        int, typer.Option("--older-than-minutes", min=1, help="Only files at least this old.")
    ] = 60,
    archive_dir: Annotated[
        Path | None, typer.Option(help="The archive; default from BCPI_ARCHIVE_DIR.")
    ] = None,
) -> None:
    """Remove the partial archive files (.incoming-*) that killed writes left behind."""
    root = archive_dir or get_settings().archive_dir
    removed = remove_partial_files(root, dt.timedelta(minutes=older_than))
    say(f"removed {len(removed)} partial archive file(s) older than {older_than} min")


@audit_app.command("replay")
def audit_replay(
    date: Annotated[
        list[dt.datetime] | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="A published date (repeatable)."),
    ] = None,
    all_dates: Annotated[bool, typer.Option("--all", help="Every published date.")] = False,
    index: Annotated[str | None, typer.Option("--index", help="Only this index's values.")] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Keep the scratch database here (default: temporary).")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute the values published for DATE from the archived batches, the journal and
    the recorded methodology; report bit-identical or every difference."""
    if bool(date) == all_dates:
        raise fail("give --date D (one or more) or --all")
    settings = settings_for(database_url)
    engine = read_engine_for(settings.database_url, settings.sqlite_busy_timeout_ms)
    code = replay_command(
        engine,
        settings,
        load_catalogue(settings.catalogue_path),
        dates=[d.date() for d in date] if date else None,
        index_code=index,
        workdir=workdir,
    )
    raise typer.Exit(code=code)
