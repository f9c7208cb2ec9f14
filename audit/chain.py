"""Verification of the hash chain over archived batches (:mod:`store.ledger` defines it).

Every archived file is hashed again and every link recomputed: changing an archived byte
changes the batch's SHA-256; changing a batch row, removing a link or reordering links
breaks the recomputed chain from there on. Publishing the head (``bcpi audit verify``
prints it) anchors the whole history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.archive import PARTIAL_PREFIX
from store import models
from store.ledger import METADATA_FIELDS, batch_metadata, link_hash
from store.models import GENESIS_HASH, AuditChainHead, AuditLink, OperatorAct
from store.operator_log import HEAD_ID as OPERATOR_LOG_HEAD
from store.operator_log import entry_fields, entry_hash

READ_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(READ_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Problem:
    batch_id: int | None
    what: str

    def __str__(self) -> str:
        where = f"batch {self.batch_id}" if self.batch_id is not None else "chain"
        return f"{where}: {self.what}"


@dataclass
class VerifyReport:
    batches: int = 0
    links: int = 0
    files: int = 0
    bytes: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[Problem] = field(default_factory=list)
    operator_acts: int = 0
    partial_files: int = 0  # ``.incoming-*`` left by a write cut short (safe to delete)
    unreferenced_files: int = 0  # archived bytes of a batch whose transaction never committed

    @property
    def ok(self) -> bool:
        return not self.problems


def _batch_rows(session: Session) -> Iterable[Mapping[str, Any]]:
    columns = [getattr(models.IngestBatch, name) for name in METADATA_FIELDS]
    query = select(*columns, models.IngestBatch.sha256).order_by(models.IngestBatch.id)
    yield from session.execute(query).mappings()


def _count_strays(root: Path, referenced: set[str], report: VerifyReport) -> None:
    """Files no batch names: not a failure (bytes are archived before the transaction that
    records them commits, so a crash or a refused batch can leave some), but counted."""
    if not root.is_dir():
        return
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.name.startswith(PARTIAL_PREFIX):
            report.partial_files += 1
        elif path.relative_to(root).as_posix() not in referenced:
            report.unreferenced_files += 1


def verify_chain(session: Session, archive_dir: Path) -> VerifyReport:
    """Re-hash every archived file and walk the chain; every mismatch names its batch."""
    report = VerifyReport()
    batches = {row["id"]: row for row in _batch_rows(session)}
    report.batches = len(batches)
    rehashed: dict[str, tuple[str | None, int]] = {}
    for batch_id, row in batches.items():
        relative = row["archive_path"]
        if relative is None:
            report.problems.append(Problem(batch_id, "has no archived bytes"))
            continue
        if relative not in rehashed:
            path = Path(archive_dir) / relative
            try:
                rehashed[relative] = (file_sha256(path), path.stat().st_size)
            except OSError as exc:
                rehashed[relative] = (None, 0)
                report.problems.append(Problem(batch_id, f"archive {relative} unreadable: {exc}"))
                continue
            report.files += 1
            report.bytes += rehashed[relative][1]
        digest = rehashed[relative][0]
        if digest is not None and digest != row["sha256"]:
            report.problems.append(
                Problem(
                    batch_id,
                    f"archive {relative} has SHA-256 {digest}, the batch recorded {row['sha256']}",
                )
            )

    previous, expected_seq = GENESIS_HASH, 1
    linked: set[int] = set()
    for link in session.scalars(select(AuditLink).order_by(AuditLink.seq)):
        report.links += 1
        if link.seq != expected_seq:
            report.problems.append(
                Problem(link.batch_id, f"link {link.seq} where link {expected_seq} should be")
            )
        if link.previous_hash != previous:
            report.problems.append(
                Problem(link.batch_id, f"link {link.seq} does not follow the link before it")
            )
        row = batches.get(link.batch_id)
        if row is None:
            report.problems.append(Problem(link.batch_id, f"link {link.seq} names no stored batch"))
        elif link_hash(link.previous_hash, row["sha256"], batch_metadata(row)) != link.chain_hash:
            report.problems.append(
                Problem(link.batch_id, f"link {link.seq}: the batch record was changed")
            )
        linked.add(link.batch_id)
        previous, expected_seq = link.chain_hash, link.seq + 1
    for batch_id in sorted(set(batches) - linked):
        report.problems.append(Problem(batch_id, "is not in the chain"))

    _count_strays(Path(archive_dir), set(rehashed), report)
    head = session.get(AuditChainHead, 1)
    if head is None:
        report.problems.append(Problem(None, "the chain head row is missing"))
    else:
        report.head_seq, report.head_hash = head.seq, head.chain_hash
        if (head.seq, head.chain_hash) != (expected_seq - 1, previous):
            report.problems.append(
                Problem(
                    None, f"the head (link {head.seq}) is not the last link ({expected_seq - 1})"
                )
            )
    _verify_operator_log(session, report)
    return report


def _verify_operator_log(session: Session, report: VerifyReport) -> None:
    """Recompute the operator log's chain (:mod:`store.operator_log`)."""
    previous, expected_seq = GENESIS_HASH, 1
    for act in session.scalars(select(OperatorAct).order_by(OperatorAct.seq)):
        report.operator_acts += 1
        where = f"operator log entry {act.seq}"
        if act.seq != expected_seq:
            report.problems.append(Problem(None, f"{where}: expected entry {expected_seq}"))
        if act.previous_hash != previous:
            report.problems.append(Problem(None, f"{where} does not follow the entry before it"))
        if entry_hash(act.previous_hash, entry_fields(act)) != act.entry_hash:
            report.problems.append(Problem(None, f"{where} was changed"))
        previous, expected_seq = act.entry_hash, act.seq + 1
    head = session.get(AuditChainHead, OPERATOR_LOG_HEAD)
    if head is None or (head.seq, head.chain_hash) != (expected_seq - 1, previous):
        report.problems.append(Problem(None, "the operator log's head is not its last entry"))
