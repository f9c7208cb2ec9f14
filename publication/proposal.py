"""Acts that need a second operator when four eyes are on (``BCPI_FOUR_EYES=true``):
a forced restatement and a forced methodology adoption wait as proposals until a different
operator approves them (``bcpi approve ID``), who then carries them out. Both the proposal
and the approval go on the operator log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ApprovalRefused
from publication.adoption import adopt, check_adoption, read_version
from publication.restatement import force_restatement
from store.models import APPROVED, PENDING, Proposal
from store.operator_log import Operator, record_act

RESTATE, ADOPT = "restate.force", "methodology.adopt"


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
    return adopt(session, version, operator, force=True, reason=reason, now=now)


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
