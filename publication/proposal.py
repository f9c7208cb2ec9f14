"""Proposals: acts that wait for a second operator, and consultations on a methodology.

With four eyes on (``BCPI_FOUR_EYES=true``) a forced restatement and a forced methodology
adoption wait as proposals until a different operator approves them (``bcpi approve ID``),
who then carries them out. A consultation publishes a proposed methodology version with
its backtest from an opening date to a closing date; an operator then withdraws it, or
adopts it through :func:`publication.adoption.adopt` (from the closing date on, earlier
only when forced). Every proposal, approval and decision goes on the operator log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.errors import AdoptionRefused, ApprovalRefused, InvalidInput
from core.methodology import Version
from publication.adoption import adopt, check_adoption, read_version, refuse_known
from publication.fixing import default_calendar
from publication.restatement import force_restatement
from store.models import APPROVED, PENDING, Proposal
from store.operator_log import Operator, record_act

RESTATE, ADOPT = "restate.force", "methodology.adopt"
CONSULT = "methodology.consultation"
PROPOSE, DECIDE = "methodology.propose", "methodology.decide"
CONSULTATION, ADOPTED, ADOPTING, WITHDRAWN = "consultation", "adopted", "adopting", "withdrawn"
"""A consultation's status: open to comment (and to a decision from its closing date),
adopted, adopted once a second operator approves (four eyes), or withdrawn."""
DECISIONS = ("adopt", "withdraw")
MAX_CONSULTATION_DAYS = 366


@dataclass
class Outcome:
    """What became of an act: carried out (``result``) or waiting (``proposal``)."""

    result: Any = None
    proposal: Proposal | None = None


def _restate(session: Session, payload: dict, operator: Operator, reason: str, now):
    first, last = (dt.date.fromisoformat(payload[k]) for k in ("first", "last"))
    report = force_restatement(session, payload["index"], first, last, reason, now)
    record_act(
        session,
        operator,
        RESTATE,
        {
            "index": payload["index"],
            "first": first,
            "last": last,
            "notices": len(report.corrections),
        },
        reason=reason,
        now=now,
    )
    return report


def _adopt(session: Session, payload: dict, operator: Operator, reason: str, now):
    version = read_version(payload["document"], payload["origin"])
    adoption = adopt(session, version, operator, force=True, reason=reason, now=now)
    consultation = (
        session.get(Proposal, payload["consultation"]) if "consultation" in payload else None
    )
    if consultation is not None and consultation.status == ADOPTING:
        consultation.status = ADOPTED
        consultation.result = {**(consultation.result or {}), "approved_by": operator.name}
    return adoption


ACTS: dict[str, Callable[..., Any]] = {RESTATE: _restate, ADOPT: _adopt}


def submit(
    session: Session,
    action: str,
    payload: dict,
    operator: Operator,
    reason: str,
    *,
    four_eyes: bool,
    now: dt.datetime | None = None,
) -> Outcome:
    """Carry out ``action`` now, or with ``four_eyes`` record it as a proposal."""
    now = now or dt.datetime.now(dt.UTC)
    if action == ADOPT:  # refused now rather than at approval if it cannot be adopted
        check_adoption(
            session, read_version(payload["document"], payload["origin"]), force=True, reason=reason
        )
    if not four_eyes:
        return Outcome(result=ACTS[action](session, payload, operator, reason, now))
    proposal = Proposal(
        action=action,
        payload=payload,
        reason=reason,
        proposed_by=operator.name,
        proposed_at=now,
        status=PENDING,
    )
    session.add(proposal)
    session.flush()
    details = {k: v for k, v in payload.items() if k != "document"}
    record_act(
        session,
        operator,
        "proposal.create",
        {"proposal": proposal.id, "action": action, **details},
        reason=reason,
        now=now,
    )
    return Outcome(proposal=proposal)


def approve(
    session: Session, proposal_id: int, operator: Operator, now: dt.datetime | None = None
) -> Outcome:
    """Carry out a pending proposal as ``operator``, who must not be its proposer."""
    now = now or dt.datetime.now(dt.UTC)
    proposal = session.execute(
        select(Proposal).where(Proposal.id == proposal_id).with_for_update()
    ).scalar_one_or_none()
    if proposal is None:
        raise ApprovalRefused(f"no proposal {proposal_id}", proposal=proposal_id)
    if proposal.action == CONSULT:
        raise ApprovalRefused(
            f"proposal {proposal_id} is a consultation on methodology "
            f"{proposal.payload['version']}: `bcpi methodology decide` closes it",
            proposal=proposal_id,
        )
    if proposal.status != PENDING:
        raise ApprovalRefused(
            f"proposal {proposal_id} is already {proposal.status} (by {proposal.decided_by})",
            proposal=proposal_id,
        )
    if proposal.proposed_by == operator.name:
        raise ApprovalRefused(
            f"proposal {proposal_id} was made by {operator.name}: a second, different "
            "operator approves it",
            proposal=proposal_id,
        )
    record_act(
        session,
        operator,
        "proposal.approve",
        {"proposal": proposal.id, "action": proposal.action, "proposed_by": proposal.proposed_by},
        reason=proposal.reason,
        now=now,
    )
    result = ACTS[proposal.action](session, proposal.payload, operator, proposal.reason, now)
    proposal.status, proposal.decided_by, proposal.decided_at = APPROVED, operator.name, now
    session.flush()
    return Outcome(result=result)


def pending(session: Session) -> list[Proposal]:
    return list(
        session.scalars(select(Proposal).where(Proposal.status == PENDING).order_by(Proposal.id))
    )


def consultations(session: Session, *, open_only: bool = False) -> list[Proposal]:
    """Consultations on methodology versions, oldest first."""
    query = select(Proposal).where(Proposal.action == CONSULT)
    if open_only:
        query = query.where(Proposal.status == CONSULTATION)
    return list(session.scalars(query.order_by(Proposal.id)))


def check_proposal(session: Session, version: Version, days: int) -> None:
    """Refuses a consultation that cannot be opened: a wrong length, a version already in
    force or stored with another document, or one already under consultation."""
    methodology = version.methodology
    if isinstance(days, bool) or not 1 <= days <= MAX_CONSULTATION_DAYS:
        raise InvalidInput(
            "consultation_days",
            f"a consultation runs 1 to {MAX_CONSULTATION_DAYS} days, not {days}",
        )
    refuse_known(session, version)
    for other in consultations(session, open_only=True):
        if other.payload["version"] == methodology.version:
            raise InvalidInput(
                "methodology",
                f"methodology {methodology.version} is already under consultation "
                f"(proposal {other.id}, closes {other.payload['closes']})",
            )


def propose(
    session: Session,
    version: Version,
    operator: Operator,
    *,
    days: int,
    backtest: dict | None,
    reason: str | None = None,
    now: dt.datetime | None = None,
    calendar: Calendar | None = None,
) -> Proposal:
    """Open a consultation of ``days`` calendar days on ``version``, from today, with the
    ``backtest`` summary (:meth:`audit.backtest.Backtest.summary`) it was proposed with."""
    now = now or dt.datetime.now(dt.UTC)
    methodology = version.methodology
    check_proposal(session, version, days)
    opens = (calendar or default_calendar()).today(now)
    closes = opens + dt.timedelta(days=days)
    details = {
        "version": methodology.version,
        "effective_from": methodology.effective_from.isoformat(),
        "sha256": version.sha256,
        "changelog": list(methodology.changelog),
        "opens": opens.isoformat(),
        "closes": closes.isoformat(),
        "backtest": backtest,
    }
    reason = reason or f"consultation on methodology {methodology.version}"
    proposal = Proposal(
        action=CONSULT,
        payload={**details, "document": version.document, "origin": f"v{methodology.version}"},
        reason=reason,
        proposed_by=operator.name,
        proposed_at=now,
        status=CONSULTATION,
    )
    session.add(proposal)
    session.flush()
    record_act(
        session, operator, PROPOSE, {"proposal": proposal.id, **details}, reason=reason, now=now
    )
    return proposal


@dataclass
class Decision:
    consultation: Proposal
    outcome: Outcome | None = None
    """For ``adopt``: the adoption carried out, or the proposal that waits (four eyes)."""


def open_consultation(session: Session, version: str) -> Proposal:
    found = [p for p in consultations(session, open_only=True) if p.payload["version"] == version]
    if not found:
        listed = ", ".join(p.payload["version"] for p in consultations(session, open_only=True))
        raise InvalidInput(
            "version",
            f"no open consultation on methodology {version!r} (open: {listed or 'none'})",
        )
    return found[-1]


def decide(
    session: Session,
    version: str,
    decision: str,
    operator: Operator,
    *,
    reason: str,
    force: bool = False,
    four_eyes: bool = False,
    now: dt.datetime | None = None,
    calendar: Calendar | None = None,
) -> Decision:
    """Close the open consultation on ``version``: ``withdraw`` it, or ``adopt`` it as
    ``bcpi methodology adopt`` would (``force``: also before the closing date)."""
    now = now or dt.datetime.now(dt.UTC)
    if decision not in DECISIONS:
        raise InvalidInput("decision", f"adopt or withdraw, not {decision!r}")
    if not (reason and reason.strip()):
        raise InvalidInput("reason", "a decision needs the operator's reason")
    consultation = open_consultation(session, version)
    payload = consultation.payload
    today = (calendar or default_calendar()).today(now)
    closes = dt.date.fromisoformat(payload["closes"])
    result = Decision(consultation)
    if decision == "adopt" and today < closes and not force:
        raise AdoptionRefused(
            f"the consultation on methodology {version} closes on {closes} (today is {today}): "
            "decide after it closes, or adopt it now with --force",
            version=version,
            closes=closes.isoformat(),
        )
    details = {"proposal": consultation.id, "version": version, "decision": decision}
    record_act(session, operator, DECIDE, {**details, "forced": force}, reason=reason, now=now)
    consultation.decided_by, consultation.decided_at = operator.name, now
    consultation.result = {"decision": decision, "reason": reason, "forced": force}
    if decision == "withdraw":
        consultation.status = WITHDRAWN
        session.flush()
        return result
    document = {"document": payload["document"], "origin": payload["origin"]}
    if force:
        outcome = submit(
            session,
            ADOPT,
            {**document, "consultation": consultation.id},
            operator,
            reason,
            four_eyes=four_eyes,
            now=now,
        )
    else:
        proposed = read_version(document["document"], document["origin"])
        outcome = Outcome(result=adopt(session, proposed, operator, reason=reason, now=now))
    consultation.status = ADOPTED if outcome.proposal is None else ADOPTING
    if outcome.proposal is not None:
        consultation.result = {**consultation.result, "proposal": outcome.proposal.id}
    session.flush()
    result.outcome = outcome
    return result
