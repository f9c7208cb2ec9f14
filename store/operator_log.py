"""The operator log: who did what, when, why and with what result, append-only.

Each act is written in the transaction of the act itself (a rolled-back act leaves no
entry) and chained: ``entry_hash = SHA-256(previous_hash ‖ canonical JSON of seq, at,
operator, via, action, reason, details)``, the first entry's previous hash 64 zeros. The
head (``audit_chain_head`` row 2) is locked while appending, so entries are serial.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.calendar import load_overrides
from core.errors import InvalidInput
from store.models import AuditChainHead, OperatorAct

HEAD_ID = 2
CALENDAR_OVERRIDES = "calendar.overrides"
NAME_LIMIT = 128


@dataclass(frozen=True)
class Operator:
    """Who acts, and through what: ``cli``, ``http`` (an admin key) or ``scheduler``."""

    name: str
    via: str = "cli"

    @classmethod
    def resolve(cls, given: str | None = None) -> Operator:
        """``given`` (``--operator``), else ``BCPI_OPERATOR``, else the login name."""
        name = (given or os.environ.get("BCPI_OPERATOR") or _login()).strip()
        if not name or len(name) > NAME_LIMIT or not name.isprintable():
            raise InvalidInput(
                "operator", f"an operator's name is 1 to {NAME_LIMIT} printable characters"
            )
        return cls(name)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _canonical(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not part of an operator log entry")


def entry_hash(previous_hash: str, entry: dict[str, Any]) -> str:
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=_canonical)
    digest = hashlib.sha256(bytes.fromhex(previous_hash))
    digest.update(body.encode())
    return digest.hexdigest()


def entry_fields(act: OperatorAct) -> dict[str, Any]:
    return {
        "seq": act.seq,
        "at": act.at,
        "operator": act.operator,
        "via": act.via,
        "action": act.action,
        "reason": act.reason,
        "details": act.details,
    }


def note_calendar_overrides(session: Session, path: Path, now: dt.datetime | None = None) -> None:
    """Log the operator's calendar override file when it is new or changed since last seen
    (a process starting with it is how it takes effect)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    last = session.scalar(
        select(OperatorAct)
        .where(OperatorAct.action == CALENDAR_OVERRIDES)
        .order_by(OperatorAct.seq.desc())
        .limit(1)
    )
    if last is not None and last.details.get("sha256") == digest:
        return
    overrides = load_overrides(path)
    details = {
        "path": str(path),
        "sha256": digest,
        "holidays": sorted(overrides.holidays),
        "working_days": sorted(overrides.working_days),
    }
    operator = Operator(Operator.resolve().name, via="start")
    record_act(session, operator, CALENDAR_OVERRIDES, details, now=now)


def record_act(
    session: Session,
    operator: Operator,
    action: str,
    details: dict[str, Any],
    *,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> OperatorAct:
    """Append one act in ``session``'s transaction."""
    now = now or dt.datetime.now(dt.UTC)
    head = session.execute(
        select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update()
    ).scalar_one()
    details = json.loads(json.dumps(details, default=_canonical))
    act = OperatorAct(
        seq=head.seq + 1,
        at=now,
        operator=operator.name,
        via=operator.via,
        action=action,
        reason=reason,
        details=details,
        previous_hash=head.chain_hash,
    )
    act.entry_hash = entry_hash(head.chain_hash, entry_fields(act))
    session.add(act)
    session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(seq=act.seq, chain_hash=act.entry_hash, updated_at=now)
    )
    session.flush()
    return act
