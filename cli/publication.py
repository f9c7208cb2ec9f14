"""``bcpi compute``, ``bcpi restate``, ``bcpi rebalance`` and ``bcpi calendar``: values out."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from cli.common import DatabaseUrl, prepared, reports_errors, say
from core.calendar import Calendar
from core.settings import get_settings
from publication.fixing import compute as compute_range
from publication.rebalance import announce, apply
from publication.restatement import sweep
from store.db import session_scope

rebalance_app = typer.Typer(help="The annual reweighting of the composite.", no_args_is_help=True)

Day = Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])]


@reports_errors
def compute(start: Day = None, end: Day = None, database_url: DatabaseUrl = None) -> None:
    """Compute (or recompute) assessments and indices for a range of publication days.

    Values published on days that are not publication days are withdrawn, changed values
    restated, each with a correction notice."""
    ctx = prepared(database_url)
    calendar = ctx.calendar
    first = start.date() if start else ctx.catalogue.index_family.base_date
    last = end.date() if end else calendar.today()
    with session_scope(ctx.engine) as session:
        report = compute_range(session, first, last, calendar=calendar)
    say(
        f"{first}..{last}: {report.trades} trades; assessments {report.assessments}; "
        f"index values {report.index_values}"
    )
    if report.withdrawn_days:
        say(
            f"  withdrawn (not publication days under methodology {calendar.methodology.version}):"
            f" {', '.join(d.isoformat() for d in report.withdrawn_days)}"
        )
    if report.corrections:
        say(f"  {len(report.corrections)} correction notices (GET /v1/corrections)")
    for code, reason in report.skipped.items():
        say(f"  {code} not computed: {reason}")


@reports_errors
def restate(
    window_days: Annotated[
        int | None,
        typer.Option(min=1, help="Publication days (default BCPI_CORRECTION_WINDOW_DAYS)."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the restatement sweep now: restate what changed in the window, with notices."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        report = sweep(
            session,
            dt.datetime.now(dt.UTC),
            window_days=window_days or ctx.settings.correction_window_days,
            calendar=ctx.calendar,
        )
    say(
        f"window {report.window_start}..{report.window_end}: {report.marks} marks, "
        f"{report.expired} before the window, {len(report.corrections)} corrections"
    )
    for c in report.corrections:
        say(f"  {c.index} {c.date}: {c.old_value!r} -> {c.new_value!r} ({c.reason})")


@rebalance_app.command("announce")
@reports_errors
def rebalance_announce(
    year: Annotated[int, typer.Option("--year", help="Year the new weights take effect.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Compute the weights effective in YEAR and store them as announced."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        report = announce(
            session,
            year,
            dt.datetime.now(dt.UTC),
            calendar=ctx.calendar,
            catalogue=ctx.catalogue,
        )
    say(report.message)
    for code, weight in sorted(report.weights.items(), key=lambda item: -item[1]):
        typer.echo(f"{code}\t{weight:.6f}")


@rebalance_app.command("apply")
@reports_errors
def rebalance_apply(
    on: Annotated[
        dt.datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="The effective date.")
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Make the announced weights due on DATE the composite's and the sectors' weights."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        report = apply(session, on.date(), dt.datetime.now(dt.UTC), calendar=ctx.calendar)
    say(report.message)
    for code, constant in report.constants.items():
        say(f"  {code}: normalising constant {constant:.6f}")


@reports_errors
def calendar(
    year: Annotated[int, typer.Argument(min=1900, max=2999, help="The year to list.")],
) -> None:
    """Print every publication day of YEAR with the instant its fixing is computed, as JSON
    (the answer of GET /v1/calendar?year=YEAR)."""
    typer.echo(json.dumps(Calendar.from_settings(get_settings()).year(year).answer(), indent=2))
