"""``bcpi methodology``, ``bcpi approve``, ``bcpi proposals`` and ``bcpi audit
operator-log``: the rules in force, and the acts that change published values, on record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from cli.common import DatabaseUrl, fail, prepared, reports_errors, say
from core.errors import AdoptionRefused
from core.methodology import registry
from publication.adoption import adopt, read_version
from publication.proposal import ADOPT, approve, pending, submit
from store import models
from store.db import session_scope
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
    say("* in force today")


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
    """The proposals waiting for a second operator."""
    ctx = prepared(database_url)
    with session_scope(ctx.engine) as session:
        for p in pending(session):
            details = {k: v for k, v in p.payload.items() if k != "document"}
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
