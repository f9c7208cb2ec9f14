"""Governance records: the methodology versions a deployment knows, the operator log and
the proposals that wait for a second operator.

``methodology_versions`` holds every version's document as published and its SHA-256:
shipped ones as the deployment first saw them (``held`` when they would have changed what
it had already published), adopted ones with who adopted them and why. ``operator_log``
is append-only and hash-chained: ``entry_hash = SHA-256(previous_hash ‖ canonical JSON of
the entry)``, its head in ``audit_chain_head`` row 2, so an edited, removed or reordered
entry breaks the chain ``bcpi audit verify`` recomputes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId

IN_FORCE, HELD = "in_force", "held"
PENDING, APPROVED = "pending", "approved"


class MethodologyVersion(Base):
    __tablename__ = "methodology_versions"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[dt.datetime]
    adopted_by: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(default=False)


class OperatorAct(Base):
    """One operator act: ``seq`` runs 1, 2, 3, … without gaps."""

    __tablename__ = "operator_log"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    operator: Mapped[str] = mapped_column(String(128))
    via: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    previous_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class Proposal(Base):
    """A forced restatement or a methodology adoption waiting for a second operator."""

    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[str] = mapped_column(String(128))
    proposed_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[dt.datetime | None]
    result: Mapped[dict[str, Any] | None]
