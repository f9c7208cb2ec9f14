"""``bcpi methodology``, ``bcpi approve``, ``bcpi proposals`` and ``bcpi audit
operator-log``: the rules in force, the changes proposed to them, and the acts that change
published values, on record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from audit.backtest import Backtest, backtest, write_files
from cli.common import DatabaseUrl, fail, prepared, reports_errors, say, settings_for
from cli.progress import progress
from core.calendar import Calendar
from core.errors import AdoptionRefused, InvalidInput, NotPublished
from core.methodology import Version, registry
from core.settings import Settings
from publication.adoption import adopt, read_version
from publication.proposal import (
    ADOPT,
    approve,
    check_proposal,
    consultations,
    decide,
    open_consultation,
    pending,
    propose,
    submit,
)
from store import models
from store.db import read_engine_for, session_scope
from store.migrate import current_revisions, head_revisions
from store.operator_log import Operator, record_act

methodology_app = typer.Typer(help="Methodology versions.", no_args_is_help=True)

OperatorName = Annotated[
    str | None,
    typer.Option(
        "--operator", help="Who acts (on the operator log); default BCPI_OPERATOR, else login."
    ),
]


def operator_of(name: str | None) -> Operator:
    return Operator.resolve(name)


@methodology_app.command("list")
@reports_errors
def methodology_list(database_url: DatabaseUrl = None) -> None:
    """Every version this deployment knows: effective date, state, source and SHA-256."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        rows = session.scalars(
            select(models.MethodologyVersion).order_by(
                models.MethodologyVersion.effective_from, models.MethodologyVersion.recorded_at
            )
        ).all()
        current = registry.in_force().version
        for row in rows:
            mark = "*" if row.version == current else " "
            typer.echo(
                f"{mark} {row.version:<24} {row.effective_from}  {row.state:<8} "
                f"{row.source:<8} {row.sha256}"
            )
        for p in consultations(session, open_only=True):
            typer.echo(
                f"? {p.payload['version']:<24} {p.payload['effective_from']}  consultation "
                f"{p.payload['opens']}..{p.payload['closes']} (proposal {p.id}) "
                f"{p.payload['sha256']}"
            )
    say("* in force today; ? under consultation")


@methodology_app.command("show")
@reports_errors
def methodology_show(version: str, database_url: DatabaseUrl = None) -> None:
    """Print VERSION's document as published."""
    prepared(database_url)
    found = registry.registered().get(version)
    if found is None:
        raise fail(f"no methodology version {version!r}; see bcpi methodology list")
    typer.echo(found.document)


@methodology_app.command("adopt")
@reports_errors
def methodology_adopt(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    force: Annotated[
        bool, typer.Option("--force", help="Adopt it although it changes published values.")
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (on the log).")] = None,
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Validate FILE and adopt the version it holds (stored with its SHA-256). A version
    that takes effect on or before the last published day is refused, naming the values it
    would change, unless --force --reason: they are then restated under it, with notices."""
    ctx = prepared(database_url)
    who = operator_of(operator)
    document = file.read_text(encoding="utf-8")
    version = read_version(document, str(file))
    try:
        with session_scope(ctx.engine) as session:
            if force:
                payload = {"document": document, "origin": file.name}
                outcome = submit(
                    session, ADOPT, payload, who, reason or "", four_eyes=ctx.settings.four_eyes
                )
                adoption = outcome.result
            else:
                adoption, outcome = adopt(session, version, who, reason=reason), None
    except AdoptionRefused as refused:
        _record_refusal(ctx.engine, version, who, reason, refused)
        raise
    if outcome is not None and outcome.proposal is not None:
        say(
            f"proposal {outcome.proposal.id}: adopt methodology {version.methodology.version}; "
            f"a second operator runs `bcpi approve {outcome.proposal.id}`"
        )
        return
    say(
        f"methodology {adoption.version} adopted, effective {adoption.effective_from} "
        f"(SHA-256 {adoption.sha256})"
    )
    if adoption.compute is not None:
        say(f"  restated under it: {len(adoption.compute.corrections)} correction notices")


def _record_refusal(engine, version, who, reason, refused: AdoptionRefused) -> None:
    """A refused adoption is an act too: on the log, in its own transaction."""
    details = {
        "version": version.methodology.version,
        "effective_from": version.methodology.effective_from,
        "sha256": version.sha256,
        **{k: refused.context[k] for k in ("published", "first", "last") if k in refused.context},
    }
    with session_scope(engine) as session:
        record_act(session, who, "methodology.refused", details, reason=reason)


def _version_file(path: Path) -> Version:
    try:
        document = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput("methodology", f"cannot read {path}: {exc}") from None
    return read_version(document, str(path))


def _day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(option, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _history(settings: Settings):
    """The database, read only, at the current schema."""
    engine = read_engine_for(settings.database_url, settings.sqlite_busy_timeout_ms)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and not Path(database).exists():
        raise fail(f"no database at {database}")
    if current_revisions(engine) != head_revisions():
        raise fail("the database is not at the current schema: run `bcpi db upgrade`")
    return engine


def _run_backtest(
    settings: Settings, version: Version, start: dt.date | None = None, end: dt.date | None = None
) -> Backtest:
    calendar = Calendar.from_settings(settings, version.methodology)
    span = f"{start or 'first published'}..{end or 'last published'}"
    with progress(f"backtest {version.methodology.version}") as job:
        job.phase(f"{span} in a scratch database")
        return backtest(
            _history(settings), version.methodology, calendar, start=start, end=end, steps=job
        )


def _print_backtest(result: Backtest) -> None:
    table = Table(
        title=f"methodology {result.version} over {result.start}..{result.end} "
        f"({result.days} publication days) beside the published values"
    )
    for heading in ("index", "days", "differing", "max abs", "max rel", "tracking error"):
        table.add_column(heading, justify="left" if heading == "index" else "right")
    for heading in ("exclusions", "fallbacks", "sufficiency"):
        table.add_column(f"{heading} changed", justify="right")

    def shown(value, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    for s in result.indices:
        table.add_row(
            s.index,
            str(s.days_compared),
            str(s.days_differing),
            shown(s.max_abs_difference, ".4f"),
            shown(s.max_rel_difference, ".4%"),
            shown(s.tracking_error, ".4%"),
            str(s.exclusions_changed_days),
            str(s.fallbacks_changed_days),
            str(s.sufficiency_changed_days),
        )
    console = Console()
    if not console.is_terminal:
        console.width = 200
    console.print(table)
    one_sided = [s for s in result.indices if s.published_only_days or s.backtest_only_days]
    for s in one_sided:
        say(
            f"  {s.index}: {s.published_only_days} days published only, "
            f"{s.backtest_only_days} days in the backtest only"
        )


@reports_errors
def backtest_command(
    methodology: Annotated[
        Path, typer.Option("--methodology", help="The methodology version file to try.")
    ],
    start: Annotated[
        str | None, typer.Option(help="First day, YYYY-MM-DD (default: the first published).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last day, YYYY-MM-DD (default: the last published).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write summary.csv, values.parquet and changes.csv to this directory."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the version in --methodology over the stored history, on every day of the range
    whatever its effective date, and set it beside the published values; nothing is
    published (the computation runs in a scratch database)."""
    version = _version_file(methodology)
    first, last = _day(start, "--start"), _day(end, "--end")
    if first and last and first > last:
        raise InvalidInput("--start", f"{first} is after --end {last}")
    result = _run_backtest(settings_for(database_url), version, first, last)
    _print_backtest(result)
    if out is not None:
        for path in write_files(result, out):
            say(f"wrote {path}")
    say("nothing was published")


@methodology_app.command("propose")
@reports_errors
def methodology_propose(
    file: Annotated[Path, typer.Argument(help="The methodology version file.")],
    consultation_days: Annotated[
        int, typer.Option("--consultation-days", help="Calendar days open to comment.")
    ],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (on the log).")] = None,
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Open a consultation on the version in FILE from today for --consultation-days days,
    published with its backtest over the stored history (GET /v1/methodology)."""
    ctx = prepared(database_url)
    who = operator_of(operator)
    version = _version_file(file)
    with session_scope(ctx.engine) as session:
        check_proposal(session, version, consultation_days)
    try:
        result = _run_backtest(ctx.settings, version)
    except NotPublished:
        result = None
        say("nothing has been published yet: the consultation has no backtest")
    summary = result.summary() if result else None
    with session_scope(ctx.engine) as session:
        proposal = propose(
            session, version, who, days=consultation_days, backtest=summary, reason=reason
        )
        opens, closes = proposal.payload["opens"], proposal.payload["closes"]
    if result is not None:
        _print_backtest(result)
    say(
        f"proposal {proposal.id}: consultation on methodology {version.methodology.version} "
        f"open from {opens}; closes {closes} "
        f"(then `bcpi methodology decide {version.methodology.version} adopt|withdraw`)"
    )


@methodology_app.command("decide")
@reports_errors
def methodology_decide(
    version: Annotated[str, typer.Argument(help="The version under consultation.")],
    decision: Annotated[str, typer.Argument(help="adopt or withdraw.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (on the log).")] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Adopt before the closing date, or although it changes published values "
            "(restated under it, as `methodology adopt --force`).",
        ),
    ] = False,
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Close the consultation on VERSION: withdraw it, or adopt it (from its closing date
    on, earlier with --force) as `bcpi methodology adopt` does."""
    ctx = prepared(database_url)
    who = operator_of(operator)
    try:
        with session_scope(ctx.engine) as session:
            decided = decide(
                session,
                version,
                decision,
                who,
                reason=reason or "",
                force=force,
                four_eyes=ctx.settings.four_eyes,
            )
            status, number = decided.consultation.status, decided.consultation.id
    except AdoptionRefused as refused:
        if "published" not in refused.context:
            raise
        with session_scope(ctx.engine) as session:
            payload = open_consultation(session, version).payload
        proposed = read_version(payload["document"], payload["origin"])
        _record_refusal(ctx.engine, proposed, who, reason, refused)
        raise fail(
            f"{refused.message} (here: `bcpi methodology decide {version} adopt --force "
            "--reason …`)"
        ) from None
    outcome = decided.outcome
    if outcome is None:
        say(f"consultation {number} on methodology {version}: withdrawn")
    elif outcome.proposal is not None:
        say(
            f"consultation {number} on methodology {version}: adoption proposed "
            f"(proposal {outcome.proposal.id}); a second operator runs "
            f"`bcpi approve {outcome.proposal.id}`"
        )
    else:
        adoption = outcome.result
        say(
            f"consultation {number}: methodology {adoption.version} {status}, effective "
            f"{adoption.effective_from} (SHA-256 {adoption.sha256})"
        )
        if adoption.compute is not None:
            say(f"  restated under it: {len(adoption.compute.corrections)} correction notices")


@reports_errors
def approve_proposal(
    proposal: Annotated[int, typer.Argument(help="The proposal's number.")],
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Approve and carry out a proposal (four eyes): a different operator than its author."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        outcome = approve(session, proposal, operator_of(operator))
    corrections = getattr(outcome.result, "corrections", None)
    if corrections is None and getattr(outcome.result, "compute", None) is not None:
        corrections = outcome.result.compute.corrections
    say(f"proposal {proposal} approved and carried out; {len(corrections or [])} notices")


@reports_errors
def proposals(database_url: DatabaseUrl = None) -> None:
    """The proposals waiting for a second operator, and the open consultations."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        for p in [*pending(session), *consultations(session, open_only=True)]:
            details = {k: v for k, v in p.payload.items() if k not in ("document", "backtest")}
            typer.echo(
                f"{p.id}\t{p.action}\t{p.proposed_by}\t{p.proposed_at:%Y-%m-%d %H:%M}Z\t"
                f"{json.dumps(details)}\t{p.reason}"
            )


@reports_errors
def operator_log(database_url: DatabaseUrl = None) -> None:
    """The operator log, oldest first, as JSON lines."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        for act in session.scalars(select(models.OperatorAct).order_by(models.OperatorAct.seq)):
            typer.echo(
                json.dumps(
                    {
                        "seq": act.seq,
                        "at": act.at.isoformat(),
                        "operator": act.operator,
                        "via": act.via,
                        "action": act.action,
                        "reason": act.reason,
                        "details": act.details,
                        "entry_hash": act.entry_hash,
                    },
                    ensure_ascii=False,
                )
            )
