"""What ingesting a batch (or a file of batches) reports back: one type, which is also the
HTTP answer to a push; and the record of a batch's rejected rows kept beside its archive."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import TypeAdapter

SHOWN_TRADE_IDS = 20
"""Trade ids a warning names; its ``count`` says how many there are in all."""
REJECTIONS_SUFFIX = "-rejections"


@dataclass(frozen=True)
class Rejection:
    row: int
    trade_id: str | None
    field: str
    code: str
    message: str


@dataclass
class IngestWarning:
    """Rows accepted that will not do what a sender may expect. ``after_correction_window``:
    trades stored for publication days before ``window_start``, the first day of the
    correction window (the last ``window_days`` publication days): they are kept and
    audited, but no published value is restated for them (only an operator's forced
    restatement would); a day not yet computed uses them when it is. ``trade_ids`` names at
    most ``SHOWN_TRADE_IDS`` of the ``count``."""

    code: str
    message: str
    count: int
    trade_ids: list[str]
    window_start: dt.date
    window_days: int

    def merge(self, other: IngestWarning) -> None:
        self.count += other.count
        room = max(0, SHOWN_TRADE_IDS - len(self.trade_ids))
        self.trade_ids.extend(other.trade_ids[:room])
        self.message = after_window_message(self.count, self.window_start, self.window_days)


def after_window_message(count: int, window_start: dt.date, window_days: int) -> str:
    return (
        f"{count:,} trade(s) accepted for publication days before {window_start}, outside the"
        f" correction window (the last {window_days} publication days): they change nothing"
        " published (only an operator's forced restatement would); a day never computed"
        " takes them when it is"
    )


@dataclass
class IngestResult:
    """``accepted`` = rows that changed the store (new trades, cancels and amends applied);
    ``held`` and ``cancelled``/``amended`` are parts of it. ``duplicates`` = rows already
    known (a re-sent trade or revision). Every row is exactly one of accepted, duplicate
    or rejected. ``by_reason`` counts the rejections by reason code; a file keeps at most
    ``KEPT_REJECTIONS`` of them in ``rejections`` (all are counted, and written to the
    rejected-rows file). ``rows`` counts the rows received, ``batch_ids`` the batches
    stored (one for a push, one per part of a file). ``warnings``: accepted rows that
    will change nothing published (:class:`IngestWarning`)."""

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
    warnings: list[IngestWarning] = field(default_factory=list)

    def add(self, other: IngestResult, *, keep: int) -> None:
        for name in ("accepted", "duplicates", "rejected", "held", "cancelled", "amended", "rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, count in other.by_reason.items():
            self.by_reason[code] = self.by_reason.get(code, 0) + count
        self.rejections.extend(other.rejections[: max(0, keep - len(self.rejections))])
        self.batch_ids.extend(other.batch_ids)
        self.batch_id = self.batch_id if self.batch_id is not None else other.batch_id
        for warning in other.warnings:
            mine = next((w for w in self.warnings if w.code == warning.code), None)
            if mine is None:
                self.warnings.append(replace(warning, trade_ids=list(warning.trade_ids)))
            else:
                mine.merge(warning)

    def json(self) -> bytes:
        return ANSWER.dump_json(self)

    def dump(self) -> dict:
        return ANSWER.dump_python(self, mode="json")


ANSWER = TypeAdapter(IngestResult)


# -- the kept record of a batch's rejected rows ---------------------------------------------


@dataclass(frozen=True)
class BatchStamp:
    """What names a batch's record independently of its id (the audit's replay gives its
    batches ids of its own, and an id a rolled-back transaction gave out may be given
    again): its exchange, bytes, first row and arrival instant, and its rejected count."""

    exchange_id: int
    sha256: str
    first_row: int
    received_at: str
    rejected: int

    def relative(self) -> Path:
        instant = dt.datetime.fromisoformat(self.received_at)
        micros = round(instant.timestamp() * 1_000_000)
        name = f"{self.sha256}.{self.exchange_id}.{self.first_row}.{micros}.ndjson"
        return Path(self.sha256[:2]) / name


def batch_stamp(batch) -> BatchStamp:
    """The stamp of a stored ``ingest_batches`` row."""
    received = batch.received_at
    if received.tzinfo is None:  # SQLite hands instants back without their zone (UTC)
        received = received.replace(tzinfo=dt.UTC)
    return BatchStamp(
        batch.exchange_id,
        batch.sha256,
        batch.first_row or 1,
        received.astimezone(dt.UTC).isoformat(),
        batch.rejected,
    )


def records_root(archive_dir: Path) -> Path:
    """``<archive_dir>-rejections``: beside the archive, not in it (every file in the
    archive is the raw bytes a batch names)."""
    root = Path(archive_dir).resolve()
    return root.with_name(root.name + REJECTIONS_SUFFIX)


def _stamp_of(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as record:
            return json.loads(record.readline())
    except (OSError, ValueError):
        return None


def record_rejections(archive_dir: Path, batch, rejections: list[Rejection]) -> None:
    """Keep the rejected rows (row, trade id, field, reason) of the batch ``batch`` beside
    the archive, before it commits: one NDJSON file, its stamp on the first line, written
    to a temporary name, fsynced and renamed. A record of the same stamp already there is
    kept as it is (the audit's replay of the batch changes nothing)."""
    if not rejections:
        return
    stamp = batch_stamp(batch)
    path = records_root(archive_dir) / stamp.relative()
    if _stamp_of(path) == stamp.__dict__:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for item in (stamp, *rejections):
                out.write(json.dumps(item.__dict__, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def recorded_rejections(archive_dir: Path, batch, limit: int) -> list[Rejection] | None:
    """The first ``limit`` rejections recorded for the stored batch ``batch``; ``None``
    when it has no record (it was received before records were kept)."""
    stamp = batch_stamp(batch)
    path = records_root(archive_dir) / stamp.relative()
    try:
        with open(path, encoding="utf-8") as record:
            if json.loads(record.readline()) != stamp.__dict__:
                return None
            rows = []
            for line in record:
                if len(rows) >= limit:
                    break
                rows.append(Rejection(**json.loads(line)))
            return rows
    except (OSError, ValueError):
        return None
