"""What ingesting a batch (or a file of batches) reports back: one type, which is also the
HTTP answer to a push."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import TypeAdapter


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
    or rejected. ``by_reason`` counts the rejections by reason code; a file keeps at most
    ``KEPT_REJECTIONS`` of them in ``rejections`` (all are counted, and written to the
    rejected-rows file). ``rows`` counts the rows received, ``batch_ids`` the batches
    stored (one for a push, one per part of a file)."""

    batch_id: int | None
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    held: int = 0
    cancelled: int = 0
    amended: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    by_reason: dict[str, int] = field(default_factory=dict)
    batch_ids: list[int] = field(default_factory=list)
    rows: int = 0

    def add(self, other: IngestResult, *, keep: int) -> None:
        for name in ("accepted", "duplicates", "rejected", "held", "cancelled", "amended", "rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, count in other.by_reason.items():
            self.by_reason[code] = self.by_reason.get(code, 0) + count
        self.rejections.extend(other.rejections[: max(0, keep - len(self.rejections))])
        self.batch_ids.extend(other.batch_ids)
        self.batch_id = self.batch_id if self.batch_id is not None else other.batch_id

    def json(self) -> bytes:
        return ANSWER.dump_json(self)

    def dump(self) -> dict:
        return ANSWER.dump_python(self, mode="json")


ANSWER = TypeAdapter(IngestResult)
