"""The ``bcpi`` command: one entry point for every job, one Typer app per command group."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from cli import access, audit, backup, consume, feeds, governance, publication, services
from cli.common import DatabaseUrl, prepared, reports_errors, say
from core.logging import configure_logging
from core.settings import get_settings

app = typer.Typer(help="bcpi: Beijing bulk-commodity price index engine.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
@reports_errors
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply every migration and mirror the catalogue into the database."""
    prepared(database_url)
    say("database is at the latest schema")


for name, group in (
    ("db", db_app),
    ("exchanges", access.exchanges_app),
    ("keys", access.keys_app),
    ("fx", feeds.fx_app),
    ("rebalance", publication.rebalance_app),
    ("audit", audit.audit_app),
    ("methodology", governance.methodology_app),
):
    app.add_typer(group, name=name)
for command in (
    feeds.ingest,
    feeds.generate,
    publication.compute,
    publication.restate,
    publication.calendar,
    services.serve,
    services.scheduler,
    consume.consume,
    services.demo,
    governance.proposals,
):
    app.command()(command)
app.command("approve")(governance.approve_proposal)
app.command("backtest")(governance.backtest_command)
app.command("backup")(backup.backup_command)
app.command("restore")(backup.restore_command)
audit.audit_app.command("operator-log")(governance.operator_log)


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise SystemExit(f"error: {problems}") from None
    configure_logging(settings.log_level, settings.log_format)
    app()
