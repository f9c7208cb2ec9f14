"""``bcpi compute``, ``bcpi restate``, ``bcpi rebalance`` and ``bcpi calendar``: values out."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from cli.common import DatabaseUrl, fail, prepared, reports_errors, say
from cli.governance import OperatorName, operator_of
from cli.progress import progress
from core.calendar import Calendar
from core.settings import get_settings
from publication.correction import Cause
from publication.fixing import compute as compute_range
from publication.proposal import RESTATE, submit
from publication.rebalance import announce, apply
from publication.restatement import open_marks, sweep
from store.db import session_scope
from store.operator_log import record_act

rebalance_app = typer.Typer(help="The annual reweighting of the composite.", no_args_is_help=True)

DATE = ["%Y-%m-%d"]
Day = Annotated[dt.datetime | None, typer.Option(formats=DATE)]
SHOWN_NOTICES = 30


def _print_compute(report) -> None:
    """What a computation published, restated, withdrew and left frozen, as a table, then
    its correction notices."""
    say(
        f"{report.start}..{report.end}: {report.trades} trades"
        + (f"; {len(report.pending_days)} days still open" if report.pending_days else "")
    )
    say(f"  {'':14}{'new':>8}{'restated':>10}{'withdrawn':>11}{'unchanged':>11}{'frozen':>8}")
    for name, counts in (
        ("assessments", report.assessments),
        ("index values", report.index_values),
    ):
        say(
            f"  {name:14}{counts.new:>8}{counts.restated:>10}{counts.withdrawn:>11}"
            f"{counts.unchanged:>11}{counts.frozen:>8}"
        )
    if report.withdrawn_days:
        say(f"  withdrawn, not publication days: {', '.join(map(str, report.withdrawn_days))}")
    if report.index_values.frozen:
        say("  frozen: outside the correction window (bcpi restate --force changes them)")
    if report.corrections:
        say(f"  {len(report.corrections)} correction notices (GET /v1/corrections):")
        for c in report.corrections[:SHOWN_NOTICES]:
            forced = ", forced" if c.forced else ""
            say(
                f"    {c.index} {c.date}: {c.old_value!r} -> {c.new_value!r} "
                f"({c.reason}{forced}: {c.cause})"
            )
        if len(report.corrections) > SHOWN_NOTICES:
            say(f"    … and {len(report.corrections) - SHOWN_NOTICES} more")
    for code, reason in report.skipped.items():
        say(f"  {code} not computed: {reason}")


@reports_errors
def compute(start: Day = None, end: Day = None, database_url: DatabaseUrl = None) -> None:
    """Compute (or recompute) assessments and indices for a range of publication days.

    Only what changed is published: values on days that are not publication days are
    withdrawn, changed values inside the correction window restated, each with a correction
    notice; older values are frozen."""
    ctx = prepared(database_url)
    calendar = ctx.calendar
    first = start.date() if start else calendar.methodology.family.base_date
    last = end.date() if end else calendar.today()
    days = len(calendar.publication_days(first, last)) if first <= last else None
    with progress("compute") as job:
        job.phase(f"{first}..{last}: {days} publication days" if days else f"{first}..{last}")
        with session_scope(ctx.engine) as session:
            cause = Cause(detail="bcpi compute", marks=open_marks(session, first, last))
            report = compute_range(session, first, last, calendar=calendar, cause=cause, steps=job)
    _print_compute(report)


@reports_errors
def restate(
    index: Annotated[
        str | None, typer.Option("--index", help="With --force: the index to restate.")
    ] = None,
    first: Annotated[
        dt.datetime | None,
        typer.Option("--from", formats=DATE, help="With --force: the first date."),
    ] = None,
    last: Annotated[
        dt.datetime | None, typer.Option("--to", formats=DATE, help="With --force: the last date.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Restate published values past the correction window.")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="With --force: why (it goes on the notices).")
    ] = None,
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the restatement sweep now (the correction window's changes, with notices); with
    --force, restate INDEX from FROM to TO whatever their age, with notices marked forced."""
    ctx = prepared(database_url)
    now = dt.datetime.now(dt.UTC)
    if force:
        if not (index and first and last and reason and reason.strip()):
            raise fail("--force needs --index CODE --from DATE --to DATE --reason TEXT")
        payload = {
            "index": index,
            "first": first.date().isoformat(),
            "last": last.date().isoformat(),
        }
        with session_scope(ctx.engine) as session:
            outcome = submit(
                session,
                RESTATE,
                payload,
                operator_of(operator),
                reason.strip(),
                four_eyes=ctx.settings.four_eyes,
                now=now,
            )
        if outcome.proposal is not None:
            say(
                f"proposal {outcome.proposal.id}: restate {index} {payload['first']}.."
                f"{payload['last']}; a second operator runs `bcpi approve {outcome.proposal.id}`"
            )
            return
        _print_compute(outcome.result)
        return
    if index or first or last or reason:
        raise fail("--index, --from, --to and --reason go with --force")
    with session_scope(ctx.engine) as session:
        swept = sweep(session, now, calendar=ctx.calendar)
    say(
        f"window {swept.window_start}..{swept.window_end}: {swept.marks} marks, "
        f"{swept.expired} before the window, {len(swept.corrections)} corrections"
    )
    for c in swept.corrections:
        say(f"  {c.index} {c.date}: {c.old_value!r} -> {c.new_value!r} ({c.reason}: {c.cause})")


@rebalance_app.command("announce")
@reports_errors
def rebalance_announce(
    year: Annotated[
        int,
        typer.Option("--year", min=1901, max=2999, help="Year the new weights take effect."),
    ],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Replace the weights already announced for YEAR (with --reason)."
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="With --replace: why (it goes on the published notices)."),
    ] = None,
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Compute the weights effective in YEAR and store them as announced.

    An announcement stands: announcing YEAR again is refused unless --replace --reason TEXT,
    which replaces it and publishes a notice for each weight that changes."""
    if reason is not None and not replace:
        raise fail("--reason goes with --replace (replacing announced weights)")
    if replace and not (reason and reason.strip()):
        raise fail("--replace needs --reason TEXT: why the announced weights are replaced")
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        report = announce(
            session,
            year,
            dt.datetime.now(dt.UTC),
            calendar=ctx.calendar,
            catalogue=ctx.catalogue,
            replace=replace,
            reason=reason.strip() if reason else None,
        )
        details = {"year": year, "weights": report.weights, "caps": report.caps}
        if replace:
            details["replace"] = True
        record_act(
            session,
            operator_of(operator),
            "rebalance.announce",
            details,
            reason=reason.strip() if reason else None,
        )
    say(report.message)
    say(
        "  caps: commodity {commodity_cap:.2%}, sector {sector_cap:.2%}, floor {floor:.2%}".format(
            **report.caps
        )
    )
    for code, step in sorted(report.phase_in.items()):
        say(f"  {code} phased in: rebalance {step}")
    if report.notices:
        say(f"  {len(report.notices)} notices of changed weights (GET /v1/corrections)")
    for code, weight in sorted(report.weights.items(), key=lambda item: -item[1]):
        typer.echo(f"{code}\t{weight:.6f}")


@rebalance_app.command("apply")
@reports_errors
def rebalance_apply(
    on: Annotated[
        dt.datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="The effective date.")
    ],
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make the announced weights due on DATE, exactly as announced, the composite's and
    (rescaled to sum to 1) the sectors' weights."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        report = apply(session, on.date(), dt.datetime.now(dt.UTC), calendar=ctx.calendar)
        details = {"date": on.date(), "constants": report.constants}
        record_act(session, operator_of(operator), "rebalance.apply", details)
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
