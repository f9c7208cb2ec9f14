"""Operations records: every scheduled job run, and the scheduler processes alive.

``job_runs`` is the fence that makes a scheduled job run exactly once per slot: its
``UNIQUE(job, slot)`` leaves one row per slot, and a run publishes its results in the same
transaction that marks that row ``succeeded`` while holding the row's lock. Two leaders
that overlap (a lock lost through a network fault, say) serialise on that row, and the
second sees the first's success and publishes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


class JobRun(Base):
    """One slot of one job: ``running``, then ``succeeded`` or ``failed`` (retried later)."""

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job", "slot"),
        Index("ix_job_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    slot: Mapped[dt.datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=1)
    holder: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]


class SchedulerInstance(Base):
    """A ``bcpi scheduler`` process, seen by its heartbeat; ``leader_since`` while it leads."""

    __tablename__ = "scheduler_instances"

    holder: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[dt.datetime]
    heartbeat_at: Mapped[dt.datetime]
    leader_since: Mapped[dt.datetime | None]
