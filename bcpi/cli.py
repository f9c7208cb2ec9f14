"""The ``bcpi`` command: one entry point for every job."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bcpi.catalogue import Catalogue, load_catalogue
from bcpi.errors import BcpiError
from bcpi.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(help="bcpi: Beijing bulk-commodity price index engine.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
exchanges_app = typer.Typer(help="Exchanges and their API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(exchanges_app, name="exchanges")
keys_app = typer.Typer(help="Admin and read API keys.", no_args_is_help=True)
fx_app = typer.Typer(help="The daily FX table used to normalise prices.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(fx_app, name="fx")

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL; default from BCPI_DATABASE_URL."),
]


def _settings(database_url: str | None) -> Settings:
    base = get_settings()
    return base.model_copy(update={"database_url": database_url}) if database_url else base


def _engine(settings: Settings):
    from store.db import engine_for

    return engine_for(settings.database_url, settings.sqlite_busy_timeout_ms)


def _prepared(database_url: str | None) -> tuple[Settings, Engine, Catalogue]:
    """The settings, the engine and the catalogue, the database migrated and in step with
    the catalogue: what every command that touches the database starts from."""
    from store.bootstrap import prepare_database

    settings = _settings(database_url)
    engine = _engine(settings)
    try:
        catalogue = load_catalogue(settings.catalogue_path)
        prepare_database(engine, catalogue)
    except BcpiError as exc:
        _fail(exc)
    return settings, engine, catalogue


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _counts(result) -> str:
    return f"{result.accepted} accepted, {result.duplicates} duplicates, {result.rejected} rejected"


def _fail(exc: BcpiError) -> None:
    _say(f"error: {exc.message}")
    raise typer.Exit(code=2)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply every migration and mirror the catalogue into the database."""

    _prepared(database_url)
    _say("database is at the latest schema")


@exchanges_app.command("add")
def exchanges_add(
    code: str,
    name: Annotated[str, typer.Option(help="Full name of the exchange.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Register an exchange; prints its new API key alone on stdout (shown once)."""
    from store.db import session_scope
    from store.reference import add_exchange

    _, engine, _ = _prepared(database_url)
    try:
        with session_scope(engine) as session:
            _, key = add_exchange(session, code, name)
    except BcpiError as exc:
        _fail(exc)
    _say(f"exchange {code} added; its API key follows (it is not stored and cannot be shown again)")
    typer.echo(key)


@exchanges_app.command("rotate-key")
def exchanges_rotate_key(code: str, database_url: DatabaseUrl = None) -> None:
    """Revoke the exchange's keys and print a new one alone on stdout (shown once)."""
    from store.db import session_scope
    from store.reference import rotate_exchange_key

    _, engine, _ = _prepared(database_url)
    try:
        with session_scope(engine) as session:
            _, key = rotate_exchange_key(session, code)
    except BcpiError as exc:
        _fail(exc)
    _say(f"the keys of exchange {code} are revoked; its new API key follows (shown once)")
    typer.echo(key)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="admin or read.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Create an admin or read key; prints it alone on stdout (shown once)."""
    from store.db import session_scope
    from store.reference import create_key

    _, engine, _ = _prepared(database_url)
    try:
        with session_scope(engine) as session:
            key = create_key(session, role)
    except BcpiError as exc:
        _fail(exc)
    _say(f"new {role} key follows (it is not stored and cannot be shown again)")
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's first 12 characters.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke the key that starts with PREFIX."""
    from store.db import session_scope
    from store.reference import revoke_key

    settings = _settings(database_url)
    with session_scope(_engine(settings)) as session:
        revoked = revoke_key(session, prefix)
    if not revoked:
        _say(f"error: no live key starts with {prefix!r}")
        raise typer.Exit(code=2)
    _say(f"revoked {revoked} key(s)")


@fx_app.command("load")
def fx_load(
    file: Annotated[Path, typer.Argument(help="CSV: date,currency,cny_per_unit.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Load daily FX rates (CNY per unit of each currency); releases held trades."""
    from ingest.commands import load_fx_file

    settings, engine, catalogue = _prepared(database_url)
    try:
        result = load_fx_file(engine, catalogue, settings, file)
    except BcpiError as exc:
        _fail(exc)
    _say(
        f"{file.name}: {result.inserted} rates loaded, {result.unchanged} already known;"
        f" {result.released} held trades released"
    )


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet trade files.")],
    exchange: Annotated[str, typer.Option("--exchange", help="Code of the sending exchange.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Validate and store trade files of any size in committed batches, with a progress bar
    and a summary by reason code; rejected rows go to FILE.rejected.csv beside each."""
    from ingest.commands import ingest_files

    settings, engine, catalogue = _prepared(database_url)
    try:
        ingest_files(engine, catalogue, settings, files, exchange)
    except BcpiError as exc:
        _fail(exc)


@app.command("compute")
def compute_command(
    start: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Compute (or recompute) assessments and indices for a range of Beijing trading days."""
    from index.service import compute
    from store.db import session_scope

    settings, engine, catalogue = _prepared(database_url)
    today = dt.datetime.now(settings.zone).date()
    first = start.date() if start else catalogue.index_family.base_date
    last = end.date() if end else today
    try:
        with session_scope(engine) as session:
            report = compute(session, first, last)
    except BcpiError as exc:
        _fail(exc)
    _say(
        f"{first}..{last}: {report.trades} trades; assessments {report.assessments}; "
        f"index values {report.index_values}"
    )
    for code, reason in report.skipped.items():
        _say(f"  {code} not computed: {reason}")


@app.command()
def restate(
    window_days: Annotated[
        int | None,
        typer.Option(min=1, help="Trading days (default BCPI_CORRECTION_WINDOW_DAYS)."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the restatement sweep now: restate what changed in the window, with notices."""
    from index.restatement import sweep
    from store.db import session_scope

    settings, engine, _ = _prepared(database_url)
    try:
        with session_scope(engine) as session:
            report = sweep(
                session,
                dt.datetime.now(dt.UTC),
                window_days=window_days or settings.correction_window_days,
            )
    except BcpiError as exc:
        _fail(exc)
    _say(
        f"window {report.window_start}..{report.window_end}: {report.marks} marks, "
        f"{report.expired} before the window, {len(report.corrections)} corrections"
    )
    for c in report.corrections:
        _say(f"  {c.index_code} {c.date}: {c.old_value!r} -> {c.new_value!r} ({c.reason})")


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Directory for the feed files.")],
    days: Annotated[int, typer.Option(min=1, help="Trading days of data.")] = 250,
    start: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    file_format: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
    seed: int = 20250102,
) -> None:
    """Write synthetic trade feeds, one file per exchange."""
    from ingest.synthetic import generate as write_feeds

    first = (
        start.date()
        if start
        else load_catalogue(get_settings().catalogue_path).index_family.base_date
    )
    for path in write_feeds(out, start=first, days=days, seed=seed, file_format=file_format):
        typer.echo(str(path))


def _prepare(settings: Settings, *, retry: bool = False):
    """Migrate once (several replicas may start together); with ``retry``, wait for the
    database with backoff instead of failing when it cannot be reached."""
    import time

    from sqlalchemy.exc import InterfaceError, OperationalError

    from scheduler.leader import migration_lock
    from store.bootstrap import prepare_database

    engine = _engine(settings)
    delay = 1.0
    while True:
        try:
            with migration_lock(settings.database_url, settings.leader_database_url):
                prepare_database(engine, load_catalogue(settings.catalogue_path))
            return engine
        except BcpiError as exc:
            _fail(exc)
        except (OperationalError, InterfaceError, OSError) as exc:
            if not retry:
                raise
            logging.getLogger("bcpi").warning(
                "database unreachable at start (%s); retrying in %.0fs", exc, delay
            )
            time.sleep(delay)
            delay = min(60.0, delay * 2)


def _metrics_dir() -> None:
    """Several workers add their request counts up through files in one directory."""
    import os
    import tempfile

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bcpi-metrics-")


def _run_server(settings: Settings, *, with_scheduler: bool, workers: int = 1) -> None:
    import os

    import uvicorn

    from bcpi.logging import logging_config

    log_config = logging_config(settings.log_level, settings.log_format)
    engine = _prepare(settings)
    scheduler = None
    if with_scheduler:
        from scheduler.service import build_scheduler

        scheduler = build_scheduler(engine, settings)
        scheduler.start()
    try:
        if workers > 1:
            # Each worker builds its app from the environment: hand it what the options set.
            os.environ["BCPI_DATABASE_URL"] = settings.database_url
            _metrics_dir()
            uvicorn.run(
                "api.app:create_worker_app",
                factory=True,
                workers=workers,
                host=settings.host,
                port=settings.port,
                log_config=log_config,
            )
        else:
            from api.app import create_app

            uvicorn.run(
                create_app(settings, migrate=False),
                host=settings.host,
                port=settings.port,
                log_config=log_config,
            )
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the HTTP API (it never runs scheduled jobs)."""
    settings = _settings(database_url)
    settings = settings.model_copy(
        update={"host": host or settings.host, "port": port or settings.port}
    )
    _run_server(settings, with_scheduler=False, workers=workers)


@app.command()
def scheduler(database_url: DatabaseUrl = None) -> None:
    """Run the job scheduler in the foreground; of several, one leads and runs the jobs."""
    from scheduler.service import SchedulerService

    settings = _settings(database_url)
    engine = _prepare(settings, retry=True)
    raise typer.Exit(code=SchedulerService(engine, settings).serve_forever())


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="TCP port for the API.")] = 8000,
    database_url: DatabaseUrl = None,
    days: Annotated[
        int | None, typer.Option(help="Trading days (default: base date to yesterday).")
    ] = None,
    serve_api: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API afterwards.")
    ] = True,
) -> None:
    """Generate feeds from three exchanges, ingest, compute every index, then serve them."""
    from bcpi.demo import demo_days, run_pipeline

    settings = _settings(database_url).model_copy(update={"port": port})
    catalogue = load_catalogue(settings.catalogue_path)
    today = dt.datetime.now(settings.zone).date()
    n_days = days or demo_days(catalogue.index_family.base_date, today)
    first = catalogue.index_family.base_date
    _say(f"demo: {n_days} trading days from {first}, database {settings.database_url}")
    run = run_pipeline(_engine(settings), catalogue, Path("var/demo-feeds"), days=n_days)
    for name, result in run.ingested.items():
        _say(f"  {name}: {_counts(result)}")
    for code, count in sorted(run.rejections_by_reason().items()):
        _say(f"    rejected for {code}: {count}")
    report = run.compute
    _say(
        f"  computed: {report.assessments.new} assessments, {report.index_values.new} index values"
    )
    if not serve_api:
        return
    base = f"http://{settings.host}:{settings.port}"
    _say(
        "\nOpen:\n"
        f"  {base}/                         dashboard\n"
        f"  {base}/docs                     API documentation\n"
        f"  {base}/v1/indices               every index\n"
        f"  {base}/v1/indices/BCPI/series   the composite's history\n"
        f"The daily fixing runs at {settings.fixing_time} {settings.timezone}. Ctrl-C stops.\n"
    )
    _run_server(settings, with_scheduler=True)


rebalance_app = typer.Typer(help="The annual reweighting of the composite.", no_args_is_help=True)
app.add_typer(rebalance_app, name="rebalance")


@rebalance_app.command("announce")
def rebalance_announce(
    year: Annotated[int, typer.Option("--year", help="Year the new weights take effect.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Compute the weights effective in YEAR and store them as announced."""
    from index.rebalance import announce
    from store.db import session_scope

    _, engine, catalogue = _prepared(database_url)
    try:
        with session_scope(engine) as session:
            report = announce(session, year, dt.datetime.now(dt.UTC), catalogue=catalogue)
    except BcpiError as exc:
        _fail(exc)
    _say(report.message)
    for code, weight in sorted(report.weights.items(), key=lambda item: -item[1]):
        typer.echo(f"{code}\t{weight:.6f}")


@rebalance_app.command("apply")
def rebalance_apply(
    on: Annotated[
        dt.datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="The effective date.")
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Make the announced weights due on DATE the composite's and the sectors' weights."""
    from index.rebalance import apply
    from store.db import session_scope

    _, engine, _ = _prepared(database_url)
    try:
        with session_scope(engine) as session:
            report = apply(session, on.date(), dt.datetime.now(dt.UTC))
    except BcpiError as exc:
        _fail(exc)
    _say(report.message)
    for code, constant in report.constants.items():
        _say(f"  {code}: normalising constant {constant:.6f}")


audit_app = typer.Typer(
    help="Audit: the archive's hash chain; replays of published values.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(database_url: DatabaseUrl = None) -> None:
    """Re-hash every archived batch and walk the hash chain; name every batch that fails."""
    from audit.commands import verify_command

    settings, engine, _ = _prepared(database_url)
    raise typer.Exit(code=verify_command(engine, settings))


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
    from ingest.archive import remove_partial_files

    root = archive_dir or get_settings().archive_dir
    removed = remove_partial_files(root, dt.timedelta(minutes=older_than))
    _say(f"removed {len(removed)} partial archive file(s) older than {older_than} min")


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
    from api.db import read_engine_for
    from audit.commands import replay_command

    if bool(date) == all_dates:
        _say("error: give --date D (one or more) or --all")
        raise typer.Exit(code=2)
    settings = _settings(database_url)
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


reliability_app = typer.Typer(help="Reliability harnesses (test tooling).", no_args_is_help=True)
app.add_typer(reliability_app, name="reliability")


@reliability_app.command("crash")
def reliability_crash(
    cycles: Annotated[int, typer.Option(min=1, help="Kill-and-restart cycles.")] = 200,
    database: Annotated[str, typer.Option(help="sqlite or postgresql.")] = "sqlite",
    postgres_url: Annotated[
        str, typer.Option(help="Server for --database postgresql (a database is created).")
    ] = "postgresql://postgres@127.0.0.1:5432/test",
    seed: Annotated[int, typer.Option(help="Random seed of kills and workload.")] = 7,
    negative_control: Annotated[
        bool,
        typer.Option(help="Break durability on purpose (ack before commit): must report loss."),
    ] = False,
    workdir: Annotated[Path | None, typer.Option(help="Keep files here.")] = None,
) -> None:
    """Push trades over HTTP while SIGKILLing the server at random instants and fixed
    points; restart, retry, and check that nothing acknowledged is lost or doubled."""
    from reliability.crash import crash_command

    if database not in ("sqlite", "postgresql"):
        _say("error: --database is sqlite or postgresql")
        raise typer.Exit(code=2)
    raise typer.Exit(
        code=crash_command(
            cycles=cycles,
            database=database,
            postgres_url=postgres_url,
            seed=seed,
            negative_control=negative_control,
            workdir=workdir,
        )
    )


@reliability_app.command("fresh-database")
def reliability_fresh_database(
    name: Annotated[str, typer.Option(help="The PostgreSQL database to (re)create, empty.")],
    postgres_url: Annotated[
        str, typer.Option(help="Any database of the server, to connect to.")
    ] = "postgresql://postgres@127.0.0.1:5432/test",
    drop: Annotated[bool, typer.Option("--drop", help="Only drop it.")] = False,
) -> None:
    """Drop (if it exists) and create an empty PostgreSQL database for a full run."""
    from reliability.server import fresh_postgres_database

    fresh_postgres_database(postgres_url, name, create=not drop)
    _say(f"database {name} " + ("dropped" if drop else "is empty and ready"))


def main() -> None:
    from bcpi.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app()
