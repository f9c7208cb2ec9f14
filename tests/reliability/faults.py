"""The crash harness's fault plan: die at a named point, or acknowledge before committing.

A server started with ``BCPI_FAULT_PLAN=tests.reliability.faults:PLAN`` (see
:mod:`core.faults`) reads these variables:

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

import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

VARIABLES = (
    "BCPI_FAULT_PLAN",
    "BCPI_FAULT_POINT",
    "BCPI_FAULT_HIT",
    "BCPI_FAULT_ARM_FILE",
    "BCPI_FAULT_ACK_BEFORE_COMMIT",
)
POINTS = ("mid_batch", "after_commit", "during_fixing")


def kill_self(reason: str) -> None:
    os.write(2, f"bcpi: test fault injection: {reason}: SIGKILL\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)


class AcknowledgedBeforeCommit(Exception):
    """Raised inside a push's transaction (rolling it back) to answer ``answer`` anyway."""

    def __init__(self, answer: str) -> None:
        super().__init__("acknowledged before commit")
        self.answer = answer


@dataclass
class Plan:
    point: str | None
    hit: int = 1
    arm_file: Path | None = None
    ack_before_commit: bool = False

    def __post_init__(self) -> None:
        self._hits = 0
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> Plan:
        arm = os.environ.get("BCPI_FAULT_ARM_FILE")
        return cls(
            os.environ.get("BCPI_FAULT_POINT") or None,
            int(os.environ.get("BCPI_FAULT_HIT", "1")),
            Path(arm) if arm else None,
            os.environ.get("BCPI_FAULT_ACK_BEFORE_COMMIT", "").lower() in ("1", "true"),
        )

    def armed(self) -> bool:
        return self.arm_file is None or self.arm_file.exists()

    def at(self, name: str, **context: object) -> None:
        if name == "before_commit":
            if self.ack_before_commit and self.armed():
                raise AcknowledgedBeforeCommit(str(context["answer"]))
            return
        if name != self.point or not self.armed():
            return
        with self._lock:
            self._hits += 1
            due = self._hits == self.hit
        if due:
            kill_self(f"fault point {name}, hit {self.hit}")

    def install(self, app) -> None:
        """Answer :class:`AcknowledgedBeforeCommit` with 200, then die."""
        if not self.ack_before_commit:
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


PLAN = Plan.from_environment()
