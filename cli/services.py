"""``bcpi serve``, ``bcpi scheduler`` and ``bcpi demo``: the long-running processes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cli.common import Context, DatabaseUrl, prepared, reports_errors, say, settings_for
from cli.progress import progress
from core.logging import logging_config
from core.settings import Settings


def _metrics_dir() -> None:
    """Several workers add their request counts up through files in one directory."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bcpi-metrics-")


def _run_server(ctx: Context, *, with_scheduler: bool, workers: int = 1) -> None:
    import uvicorn

    settings = ctx.settings
    log_config = logging_config(settings.log_level, settings.log_format)
    scheduler = None
    if with_scheduler:
        from scheduler.service import build_scheduler

        scheduler = build_scheduler(ctx.engine, settings)
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
                **_proxies(settings),
            )
        else:
            from api.app import create_app

            uvicorn.run(
                create_app(settings, migrate=False),
                host=settings.host,
                port=settings.port,
                log_config=log_config,
                **_proxies(settings),
            )
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


def _proxies(settings: Settings) -> dict:
    """Forwarded headers believed only from the configured proxies (uvicorn would trust
    any loopback peer by default)."""
    trusted = ",".join(p.strip() for p in settings.trusted_proxies.split(",") if p.strip())
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or ""}


@reports_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the HTTP API (it never runs scheduled jobs)."""
    ctx = prepared(database_url)
    settings = ctx.settings.model_copy(
        update={"host": host or ctx.settings.host, "port": port or ctx.settings.port}
    )
    _run_server(Context(settings, ctx.engine, ctx.catalogue), with_scheduler=False, workers=workers)


@reports_errors
def scheduler(database_url: DatabaseUrl = None) -> None:
    """Run the job scheduler in the foreground; of several, one leads and runs the jobs."""
    from scheduler.service import SchedulerService

    ctx = prepared(database_url, retry=True)
    raise typer.Exit(code=SchedulerService(ctx.engine, ctx.settings).serve_forever())


@reports_errors
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
    from cli.demo import demo_days, run_pipeline

    ctx = prepared(database_url)
    settings = settings_for(database_url).model_copy(update={"port": port})
    calendar = ctx.calendar
    first = calendar.methodology.family.base_date
    n_days = days or demo_days(first, calendar.today())
    say(f"demo: {n_days} trading days from {first}, database {settings.database_url}")
    with progress("demo") as job:
        feeds = Path("var/demo-feeds")
        run = run_pipeline(
            ctx.engine, ctx.catalogue, feeds, days=n_days, calendar=calendar, job=job
        )
    for name, result in run.ingested.items():
        say(
            f"  {name}: {result.accepted} accepted, {result.duplicates} duplicates, "
            f"{result.rejected} rejected"
        )
    for code, count in sorted(run.rejections_by_reason().items()):
        say(f"    rejected for {code}: {count}")
    report = run.compute
    say(f"  computed: {report.assessments.new} assessments, {report.index_values.new} index values")
    if not serve_api:
        return
    base = f"http://{settings.host}:{settings.port}"
    say(
        "\nOpen:\n"
        f"  {base}/                         dashboard\n"
        f"  {base}/docs                     API documentation\n"
        f"  {base}/v1/indices               every index\n"
        f"  {base}/v1/indices/BCPI/series   the composite's history\n"
        f"The daily fixing runs at {calendar.fixing_time} {calendar.zone.key}. Ctrl-C stops.\n"
    )
    _run_server(Context(settings, ctx.engine, ctx.catalogue), with_scheduler=True)
