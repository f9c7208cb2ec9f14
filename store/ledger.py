"""The records ingest and publication emit for the audit: the hash chain and the journal.

Each stored batch is linked in the transaction that stores it::

    chain_hash = SHA-256(previous chain_hash ‖ batch SHA-256 ‖ metadata)

with the two hashes as their 32 raw bytes and the metadata as canonical JSON (sorted keys,
no spaces, UTF-8) of the batch's id, exchange, source, format, file name, first row, row
count, arrival instant (UTC, microseconds) and archive path. The first link's previous hash
is 64 zeros. Changing an archived byte changes the batch's SHA-256; changing a batch row,
removing a link or reordering links breaks the recomputed chain from there on.

Every computation that can publish values writes one journal entry in its transaction (a
rolled-back run leaves none) with what it ran under: ``bcpi audit replay`` runs the
entries again, in order. Verification and replay live in :mod:`audit`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store import models
from store.models import AuditChainHead, AuditComputation, AuditLink, FxRate

if TYPE_CHECKING:
    from core.calendar import Calendar

METADATA_FIELDS = (
    "id",
    "exchange_id",
    "source",
    "format",
    "filename",
    "first_row",
    "rows_total",
    "received_at",
    "archive_path",
)


def batch_metadata(batch: Any) -> bytes:
    """The canonical metadata of a batch (an ``IngestBatch`` or a row with its columns)."""
    get = batch.get if isinstance(batch, Mapping) else lambda name: getattr(batch, name)
    values = {name: get(name) for name in METADATA_FIELDS}
    received = values["received_at"]
    if isinstance(received, dt.datetime):
        values["received_at"] = received.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return json.dumps(values, sort_keys=True, separators=(",", ":")).encode()


def link_hash(previous_hash: str, batch_sha256: str, metadata: bytes) -> str:
    digest = hashlib.sha256(bytes.fromhex(previous_hash))
    digest.update(bytes.fromhex(batch_sha256))
    digest.update(metadata)
    return digest.hexdigest()


def chain_batch(session: Session, batch: models.IngestBatch) -> AuditLink:
    """Append ``batch`` (flushed, with its id) to the chain in ``session``'s transaction.

    The head row is locked until the transaction ends, so appends are serial; a rolled
    back batch leaves no link.
    """
    head = session.execute(
        select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    ).scalar_one()
    chain_hash = link_hash(head.chain_hash, batch.sha256, batch_metadata(batch))
    link = AuditLink(
        seq=head.seq + 1,
        batch_id=batch.id,
        previous_hash=head.chain_hash,
        chain_hash=chain_hash,
        linked_at=batch.received_at,
    )
    session.add(link)
    session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == 1)
        .values(seq=link.seq, chain_hash=chain_hash, updated_at=batch.received_at)
    )
    session.flush()
    return link


def reference_hash(session: Session) -> str:
    """A digest of the reference data a computation reads: commodities (id order is the
    kernel's commodity order), index definitions and every weight set."""
    parts = {
        "commodities": session.execute(
            select(models.Commodity.id, models.Commodity.code).order_by(models.Commodity.id)
        ).all(),
        "indices": session.execute(
            select(
                models.IndexDefinition.id,
                models.IndexDefinition.code,
                models.IndexDefinition.kind,
                models.IndexDefinition.base_date,
                models.IndexDefinition.base_value,
            ).order_by(models.IndexDefinition.id)
        ).all(),
        "weights": session.execute(
            select(
                models.IndexConstituent.index_id,
                models.IndexConstituent.effective_from,
                models.IndexConstituent.commodity_id,
                models.IndexConstituent.weight,
            ).order_by(
                models.IndexConstituent.index_id,
                models.IndexConstituent.effective_from,
                models.IndexConstituent.commodity_id,
            )
        ).all(),
    }
    text = json.dumps(
        {name: [list(row) for row in rows] for name, rows in parts.items()},
        default=lambda value: value.isoformat() if isinstance(value, dt.date) else repr(value),
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def journal_days(calendar: Calendar, start: dt.date, end: dt.date) -> list[str]:
    """The publication days from the one before ``start`` through ``end`` (ISO dates)."""
    previous = calendar.previous_publication_day(start)
    return [d.isoformat() for d in calendar.publication_days(previous, end)]


def journal_computation(
    session: Session,
    kind: str,
    start: dt.date,
    end: dt.date,
    now: dt.datetime,
    calendar: Calendar,
    restating: dict[str, Any] | None = None,
) -> None:
    """One journal entry: the run's kind, range, ``now``, methodology, publication days,
    the newest batch and FX rate its transaction can see, and the reference data digest."""
    last_batch = session.scalar(select(func.max(models.IngestBatch.id)))
    last_fx = session.scalar(select(func.max(FxRate.id)))
    session.add(
        AuditComputation(
            kind=kind,
            start=start,
            end=end,
            computed_at=now,
            methodology_version=calendar.methodology.version,
            trading_days=journal_days(calendar, start, end),
            last_batch_id=last_batch,
            last_fx_id=last_fx,
            reference_hash=reference_hash(session),
            restating=restating,
        )
    )
    session.flush()
