"""Ingest one batch of trades: validate, normalise, store the valid rows idempotently.

A batch is one transaction: the batch record and all its valid trades commit together
or not at all. Re-sent trades hit ``UNIQUE(exchange_id, trade_id)`` and count as
duplicates; rejected rows are reported with their reason and never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bcpi.catalogue import Catalogue
from bcpi.errors import IngestError
from ingest.normalise import normalised_frame
from ingest.readers import scan_feed
from ingest.validate import (
    REJECT_CODE,
    REJECT_FIELD,
    REJECT_MESSAGE,
    ROW,
    raw_frame,
    reference_frame,
    validated_frame,
)
from store import models
from store.reference import get_exchange
from store.upsert import insert_ignoring_conflicts

INSERT_CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class Rejection:
    row: int
    trade_id: str | None
    field: str
    code: str
    message: str


@dataclass
class IngestResult:
    batch_id: int
    accepted: int
    duplicates: int
    rejected: int
    rejections: list[Rejection] = field(default_factory=list)


def commodity_reference(session: Session, catalogue: Catalogue) -> pl.LazyFrame:
    ids = dict(session.execute(select(models.Commodity.code, models.Commodity.id)).all())
    rows = []
    for c in catalogue.commodities:
        fe_low, fe_high = c.spec.get("fe_pct_range", (None, None))
        rows.append(
            {
                "commodity": c.code,
                "commodity_id": ids.get(c.code),
                "spec_unit": c.unit,
                "spec_currency": c.currency,
                "band_low": c.price_band[0],
                "band_high": c.price_band[1],
                "listed_on": c.listed_on,
                "fe_low": fe_low,
                "fe_high": fe_high,
            }
        )
    return reference_frame(rows)


def _store_rows(frame: pl.DataFrame, exchange_id: int, batch_id: int) -> list[dict]:
    rows = frame.drop(ROW).to_dicts()
    for row in rows:
        attributes = {k: v for k, v in row["attributes"].items() if v is not None}
        row["attributes"] = attributes or None
        row["exchange_id"] = exchange_id
        row["batch_id"] = batch_id
        row["status"] = "active"
    return rows


def ingest_frame(
    session: Session,
    catalogue: Catalogue,
    feed: pl.LazyFrame,
    *,
    exchange_code: str,
    source: str,
    sha256: str,
    filename: str | None = None,
    now: dt.datetime | None = None,
) -> IngestResult:
    now = now or dt.datetime.now(dt.UTC)
    exchange = get_exchange(session, exchange_code)
    checked = validated_frame(
        raw_frame(feed), commodity_reference(session, catalogue), now=now
    ).collect()

    bad = checked.filter(pl.col(REJECT_CODE).is_not_null())
    good = normalised_frame(checked.lazy().filter(pl.col(REJECT_CODE).is_null())).collect()

    batch = models.IngestBatch(
        exchange_id=exchange.id,
        source=source,
        filename=filename,
        sha256=sha256,
        received_at=now,
        rows_total=checked.height,
        rejected=bad.height,
    )
    session.add(batch)
    session.flush()

    table = models.Trade.__table__
    for chunk in good.iter_slices(INSERT_CHUNK_ROWS):
        rows = _store_rows(chunk, exchange.id, batch.id)
        insert_ignoring_conflicts(session, table, rows, ("exchange_id", "trade_id"))
    accepted = session.scalar(
        select(func.count()).select_from(models.Trade).where(models.Trade.batch_id == batch.id)
    )
    batch.accepted = int(accepted or 0)
    batch.duplicates = good.height - batch.accepted
    session.flush()

    rejections = [
        Rejection(
            row=r[ROW],
            trade_id=r["trade_id__raw"],
            field=r[REJECT_FIELD],
            code=r[REJECT_CODE],
            message=r[REJECT_MESSAGE],
        )
        for r in bad.select(
            ROW, "trade_id__raw", REJECT_FIELD, REJECT_CODE, REJECT_MESSAGE
        ).iter_rows(named=True)
    ]
    return IngestResult(batch.id, batch.accepted, batch.duplicates, bad.height, rejections)


def ingest_file(
    session: Session, catalogue: Catalogue, path: Path, exchange_code: str
) -> IngestResult:
    path = Path(path)
    feed = scan_feed(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        return ingest_frame(
            session,
            catalogue,
            feed,
            exchange_code=exchange_code,
            source="file",
            sha256=digest,
            filename=path.name,
        )
    except pl.exceptions.PolarsError as exc:
        raise IngestError(
            f"{path.name}: cannot be read as a trade feed: {exc}", path=str(path)
        ) from exc


def write_rejections(rejections: list[Rejection], path: Path) -> None:
    pl.DataFrame(
        [r.__dict__ for r in rejections],
        schema={
            "row": pl.Int64,
            "trade_id": pl.String,
            "field": pl.String,
            "code": pl.String,
            "message": pl.String,
        },
    ).write_csv(path)
