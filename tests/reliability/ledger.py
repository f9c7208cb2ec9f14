"""The client's ledger: every batch sent, its Idempotency-Key, and what the server said.

A batch is ``ok`` (answered 200: each row accepted, a duplicate or rejected with its
reason), ``failed`` (answered 422: nothing stored) or ``unknown`` (sent, no answer: the
server died). Unknown batches are sent again, with the same key, until they are one of
the other two. From the answers: the trades acknowledged (must be stored exactly once,
as sent) and the trades rejected (must not be stored).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    PENDING = "pending"  # not sent yet
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SentTrade:
    trade_id: str
    price: float
    quantity: float
    valid: bool  # as the client built it; the server's answer decides


@dataclass
class BatchEntry:
    key: str
    cycle: int
    media_type: str
    body: bytes
    atomic: bool
    trades: list[SentTrade]
    outcome: Outcome = Outcome.PENDING
    attempts: int = 0
    replayed: bool = False  # the answer was a stored one (the batch had committed before)
    rejected_ids: frozenset[str] = frozenset()
    statuses: list[int] = field(default_factory=list)


class Ledger:
    def __init__(self) -> None:
        self.batches: list[BatchEntry] = []
        self._lock = threading.Lock()

    def add(self, entry: BatchEntry) -> None:
        with self._lock:
            self.batches.append(entry)

    def record(self, entry: BatchEntry, status: int | None, answer: dict | None, replayed: bool):
        """Write down one attempt: ``status`` None means no answer arrived."""
        with self._lock:
            entry.attempts += 1
            if status is None:
                entry.outcome = Outcome.UNKNOWN
                return
            entry.statuses.append(status)
            if status == 200 and answer is not None:
                entry.outcome = Outcome.OK
                entry.replayed = replayed
                entry.rejected_ids = frozenset(
                    r["trade_id"] for r in answer.get("rejections", []) if r.get("trade_id")
                )
            elif status == 422:
                entry.outcome = Outcome.FAILED
            else:
                entry.outcome = Outcome.UNKNOWN  # a 5xx: the outcome is not known

    def unresolved(self) -> list[BatchEntry]:
        return [b for b in self.batches if b.outcome in (Outcome.PENDING, Outcome.UNKNOWN)]

    def acknowledged(self) -> dict[str, SentTrade]:
        """Trades the server said it holds (accepted now or before, as a duplicate)."""
        out = {}
        for batch in self.batches:
            if batch.outcome is Outcome.OK:
                for trade in batch.trades:
                    if trade.trade_id not in batch.rejected_ids:
                        out[trade.trade_id] = trade
        return out

    def rejected(self) -> set[str]:
        """Trades the server refused, and never acknowledged in another batch."""
        refused = set()
        for batch in self.batches:
            if batch.outcome is Outcome.FAILED:
                refused.update(t.trade_id for t in batch.trades)
            elif batch.outcome is Outcome.OK:
                refused.update(batch.rejected_ids)
        return refused - set(self.acknowledged())

    def counts(self) -> dict[str, int]:
        by = {o.value: 0 for o in Outcome}
        for batch in self.batches:
            by[batch.outcome.value] += 1
        return by
