"""The crash harness's figures, and the lines it prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class CrashReport:
    database: str
    negative_control: bool = False
    cycles: int = 0
    kills: Counter = field(default_factory=Counter)
    restarts: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    batches: int = 0
    unanswered_at_kill: int = 0
    retried: int = 0
    replayed_answers: int = 0
    trades_sent: int = 0
    acknowledged: int = 0
    rejected: int = 0
    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    phantom: set[str] = field(default_factory=set)
    altered: set[str] = field(default_factory=set)
    server_errors: int = 0
    integrity_checks: int = 0
    integrity_what: str = ""
    integrity_skipped: str | None = None
    integrity_problems: list[str] = field(default_factory=list)
    chain_links: int = 0
    chain_problems: list[str] = field(default_factory=list)
    archive_files: int = 0
    archive_strays: tuple[int, int] = (0, 0)  # partial writes, bytes of uncommitted batches
    fixings_killed: int = 0
    fixings_completed: int = 0
    fixing_problems: list[str] = field(default_factory=list)
    replayed_values: int = 0
    replayed_identical: int = 0
    replay_differences: list[str] = field(default_factory=list)
    harness_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.phantom
            or self.altered
            or self.server_errors
            or self.integrity_problems
            or self.chain_problems
            or self.fixing_problems
            or self.replay_differences
            or self.harness_problems
        )

    def lines(self) -> list[str]:
        restart = (
            f"{sum(self.restart_seconds) / len(self.restart_seconds):.1f}s average"
            if self.restart_seconds
            else "-"
        )
        integrity = (
            f"skipped ({self.integrity_skipped})"
            if self.integrity_skipped
            else ("ok" if not self.integrity_problems else f"{len(self.integrity_problems)} FAILED")
        )
        kills = ", ".join(f"{mode} {n}" for mode, n in sorted(self.kills.items()))
        return [
            f"crash harness on {self.database}"
            + (" (NEGATIVE CONTROL: ack before commit)" if self.negative_control else ""),
            f"  cycles {self.cycles}; SIGKILLs: {kills}; restarts {self.restarts} ({restart})",
            f"  batches {self.batches}; unanswered at a kill {self.unanswered_at_kill}; "
            f"resent with the same key {self.retried} (answered from the stored response "
            f"{self.replayed_answers})",
            f"  trades sent {self.trades_sent}; acknowledged {self.acknowledged}; "
            f"rejected {self.rejected}",
            f"  lost {len(self.lost)}; duplicated {len(self.duplicated)}; "
            f"stored without acknowledgement {len(self.phantom)}; altered {len(self.altered)}; "
            f"5xx answers {self.server_errors}",
            f"  integrity: {integrity} after each of {self.integrity_checks} cycles "
            f"({self.integrity_what}); hash chain: {self.chain_links} links, "
            + ("ok" if not self.chain_problems else f"{len(self.chain_problems)} FAILED"),
            f"  archive: {self.archive_files} files named by batches, all re-hashed; left by "
            f"kills, unused: {self.archive_strays[0]} partial writes, "
            f"{self.archive_strays[1]} files of batches never committed",
            f"  fixings killed mid-computation {self.fixings_killed}; "
            f"completed on their next run {self.fixings_completed}"
            + (f"; {len(self.fixing_problems)} FAILED" if self.fixing_problems else ""),
            f"  audit replay of what the fixings published: {self.replayed_identical} of "
            f"{self.replayed_values} values bit-identical",
            f"  {self.seconds:.0f}s; " + ("OK" if self.ok else "FAILED"),
        ]
