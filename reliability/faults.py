"""Test-only fault injection: die at a named point, or acknowledge before committing.

Every hook is inert unless its ``BCPI_FAULT_*`` setting is set (one cached lookup, then a
string comparison). The crash harness (:mod:`reliability.crash`) sets them on the server
it starts:

- ``BCPI_FAULT_POINT=mid_batch``: after a batch's trades are inserted, before it commits;
  ``after_commit``: after a push has committed, before its answer is sent;
  ``during_fixing``: inside a computation, after the assessments, before the index values.
  The process SIGKILLs itself the ``BCPI_FAULT_HIT``-th time (default 1) the point is
  reached while ``BCPI_FAULT_ARM_FILE`` exists (or always, when that is unset).
- ``BCPI_FAULT_ACK_BEFORE_COMMIT=1``: durability deliberately broken. A push is answered
  200 with its result, its transaction is rolled back instead of committed, and the
  process SIGKILLs itself once the answer is sent (while ``BCPI_FAULT_ARM_FILE`` exists,
  when set). The harness must then report loss.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bcpi.settings import get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI


@dataclass(frozen=True)
class Armed:
    point: str | None
    hit: int
    arm_file: Path | None
    ack_before_commit: bool


_lock = threading.Lock()
_hits = 0


@functools.cache
def armed() -> Armed | None:
    settings = get_settings()
    if settings.fault_point is None and not settings.fault_ack_before_commit:
        return None
    return Armed(
        settings.fault_point,
        settings.fault_hit,
        settings.fault_arm_file,
        settings.fault_ack_before_commit,
    )


def kill_self(reason: str) -> None:
    os.write(2, f"bcpi: test fault injection: {reason}: SIGKILL\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)


def fault_point(name: str) -> None:
    """Die here if ``BCPI_FAULT_POINT`` names this point and its hit count is reached."""
    faults = armed()
    if faults is None or faults.point != name:
        return
    if faults.arm_file is not None and not faults.arm_file.exists():
        return
    global _hits
    with _lock:
        _hits += 1
        due = _hits == faults.hit
    if due:
        kill_self(f"fault point {name}, hit {faults.hit}")


class AcknowledgedBeforeCommit(Exception):
    """Raised inside a push's transaction (rolling it back) to answer ``answer`` anyway."""

    def __init__(self, answer: str) -> None:
        super().__init__("acknowledged before commit")
        self.answer = answer


def acknowledge_before_commit(answer: str) -> None:
    """Under ``BCPI_FAULT_ACK_BEFORE_COMMIT``: abandon the transaction, answer, then die."""
    faults = armed()
    if faults is None or not faults.ack_before_commit:
        return
    if faults.arm_file is None or faults.arm_file.exists():
        raise AcknowledgedBeforeCommit(answer)


def install_fault_hooks(app: FastAPI) -> None:
    """Answer :class:`AcknowledgedBeforeCommit` with 200, then die (only when armed)."""
    faults = armed()
    if faults is None or not faults.ack_before_commit:
        return
    from fastapi.responses import Response
    from starlette.background import BackgroundTask

    async def acknowledge(_request, exc: Exception) -> Response:
        assert isinstance(exc, AcknowledgedBeforeCommit)
        return Response(
            exc.answer,
            media_type="application/json",
            background=BackgroundTask(kill_self, "acknowledged before commit"),
        )

    app.add_exception_handler(AcknowledgedBeforeCommit, acknowledge)
