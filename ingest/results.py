"""What ingesting a batch (or a file of batches) reports back."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import polars as pl


@dataclass(frozen=True)
class Rejection:
    row: int
    trade_id: str | None
    field: str
    code: str
    message: str


@dataclass
class IngestResult:
    """``accepted`` = rows that changed the store (new trades, cancels and amends applied);
    ``held`` and ``cancelled``/``amended`` are parts of it. ``duplicates`` = rows already
    known (a re-sent trade or revision). Every row is exactly one of accepted, duplicate
    or rejected. A file keeps at most ``kept_rejections`` rejections here (all are counted
    in ``by_reason`` and written to the rejected-rows file)."""

    batch_id: int | None
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    held: int = 0
    cancelled: int = 0
    amended: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    by_reason: Counter[str] = field(default_factory=Counter)
    batch_ids: list[int] = field(default_factory=list)
    rows: int = 0
    rejected_rows: pl.DataFrame | None = field(default=None, repr=False)

    def add(self, other: IngestResult, *, keep: int) -> None:
        for name in ("accepted", "duplicates", "rejected", "held", "cancelled", "amended", "rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_reason.update(other.by_reason)
        self.rejections.extend(other.rejections[: max(0, keep - len(self.rejections))])
        self.batch_ids.extend(other.batch_ids)
        self.batch_id = self.batch_id if self.batch_id is not None else other.batch_id

    def response(self) -> dict:
        """The HTTP answer: ``{batch_id, accepted, duplicates, rejected, held, cancelled,
        amended, rejections: [{row, trade_id, field, code, message}]}``."""
        return {
            "batch_id": self.batch_id,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "held": self.held,
            "cancelled": self.cancelled,
            "amended": self.amended,
            "rejections": [asdict(r) for r in self.rejections],
        }
