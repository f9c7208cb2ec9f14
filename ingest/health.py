"""Feed health: per exchange, the last batch and for one day its batches' rows by outcome,
rejection reasons, trades stored, gaps in its sequence numbers and the feed log's batches
refused (dead) and waiting; the day's rejected rows of one exchange; and the trades a
batch stored too late to change anything published."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import and_, false, func, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from core.calendar import Calendar
from ingest.queued import dead_counts, queued_counts
from ingest.results import (
    SHOWN_TRADE_IDS,
    IngestWarning,
    after_window_message,
    batch_stamp,
    recorded_rejections,
)
from store import models
from store.models import TradeRevision

MAX_GAP_RANGES = 20


@dataclass(frozen=True)
class SequenceHealth:
    first: int | None
    last: int | None
    messages: int
    duplicates: int
    gaps: int
    missing: int
    gap_ranges: list[tuple[int, int]]


@dataclass(frozen=True)
class ExchangeHealth:
    code: str
    name: str
    last_batch_at: dt.datetime | None
    batches: int
    rows: int
    accepted: int
    duplicates: int
    rejected: int
    held: int
    trades: int
    rejection_rate: float | None
    rejections_by_reason: dict[str, int]
    after_correction_window: int
    """Trades stored that day for publication days already outside the correction window:
    audited, but they change nothing published (only a forced restatement would)."""
    seq: SequenceHealth
    dead_batches: int = 0
    """Batches of the feed log refused that day for a reason of their data (each named,
    with its reason, by ``GET /v1/batches/{id}`` and on the dead-letter subject)."""
    queued_batches: int = 0
    """Batches of the feed log waiting for a consumer now."""


@dataclass(frozen=True)
class FeedHealth:
    date: dt.date
    timezone: str
    exchanges: list[ExchangeHealth]
    dead_without_exchange: int = 0
    """Messages refused that day that named no known exchange (operators' view only)."""


def _sequence(session: Session, batch_ids) -> SequenceHealth:
    """Gaps in the exchange's ``seq`` over the day's trades, cancels and amends."""
    seqs = union_all(
        select(models.Trade.seq.label("seq")).where(
            models.Trade.batch_id.in_(batch_ids), models.Trade.seq.is_not(None)
        ),
        select(TradeRevision.seq.label("seq")).where(
            TradeRevision.batch_id.in_(batch_ids), TradeRevision.seq.is_not(None)
        ),
    ).subquery()
    first, last, messages, distinct = session.execute(
        select(
            func.min(seqs.c.seq),
            func.max(seqs.c.seq),
            func.count(),
            func.count(func.distinct(seqs.c.seq)),
        )
    ).one()
    ordered = select(
        seqs.c.seq, func.lag(seqs.c.seq).over(order_by=seqs.c.seq).label("previous")
    ).subquery()
    gap = ordered.c.seq - ordered.c.previous - literal_column("1")
    gaps, missing = session.execute(
        select(func.count(), func.coalesce(func.sum(gap), 0)).where(gap > 0)
    ).one()
    ranges = session.execute(
        select(ordered.c.previous + 1, ordered.c.seq - 1)
        .where(gap > 0)
        .order_by(ordered.c.seq)
        .limit(MAX_GAP_RANGES)
    ).all()
    return SequenceHealth(
        first=first,
        last=last,
        messages=messages,
        duplicates=messages - distinct,
        gaps=gaps,
        missing=int(missing),
        gap_ranges=[(int(a), int(b)) for a, b in ranges],
    )


def correction_window_start(calendar: Calendar, day: dt.date) -> dt.date:
    """The first publication day of the correction window on ``day`` (the methodology's last
    ``correction_window_days`` publication days): a trade for an earlier publication day
    changes nothing published (the restatement sweep does not reach it)."""
    return calendar.publication_days_before(
        day, calendar.methodology.publication.correction_window_days
    )


def after_window_warning(
    session: Session,
    calendar: Calendar,
    now: dt.datetime,
    batch_id: int,
    new: pl.DataFrame,
    *,
    all_stored: bool,
) -> IngestWarning | None:
    """The warning for the new trades (``new``: with ``trade_id`` and ``window_day``) that
    batch ``batch_id`` stored for publication days before the correction window at
    ``now``; ``all_stored`` when none of them was a duplicate."""
    start = correction_window_start(calendar, calendar.today(now))
    late = new.filter(pl.col("window_day") < start).get_column("trade_id")
    if late.len() and not all_stored:
        stored = set(
            session.scalars(select(models.Trade.trade_id).where(models.Trade.batch_id == batch_id))
        )
        late = pl.Series("trade_id", [t for t in late if t in stored], dtype=pl.String)
    if not late.len():
        return None
    days = calendar.methodology.publication.correction_window_days
    return IngestWarning(
        code="after_correction_window",
        message=after_window_message(late.len(), start, days),
        count=late.len(),
        trade_ids=late.head(SHOWN_TRADE_IDS).to_list(),
        window_start=start,
        window_days=days,
    )


def _frozen_windows(session: Session, calendar: Calendar, day: dt.date):
    """A trade arriving on ``day`` is after the correction window when its window belongs
    to a publication day before the window: traded at or before that day's cut-off."""
    last_frozen = calendar.previous_publication_day(correction_window_start(calendar, day))
    return or_(
        *(
            and_(
                models.Trade.commodity_id == commodity_id,
                models.Trade.traded_at <= calendar.cutoff(last_frozen, code),
            )
            for commodity_id, code in session.execute(
                select(models.Commodity.id, models.Commodity.code)
            )
        ),
        false(),
    )


def feed_health(
    session: Session, calendar: Calendar, day: dt.date, *, exchange_id: int | None = None
) -> FeedHealth:
    """Every exchange's health over the batches received on ``day`` (local); only the
    exchange ``exchange_id``'s when given."""
    start, stop = calendar.at(day), calendar.at(day + dt.timedelta(days=1))
    frozen = _frozen_windows(session, calendar, day)
    dead, waiting = dead_counts(session, start, stop), queued_counts(session)
    out = []
    exchanges = select(models.Exchange).order_by(models.Exchange.code)
    if exchange_id is not None:
        exchanges = exchanges.where(models.Exchange.id == exchange_id)
    for exchange in session.scalars(exchanges):
        last_batch_at = session.scalar(
            select(func.max(models.IngestBatch.received_at)).where(
                models.IngestBatch.exchange_id == exchange.id
            )
        )
        batches = session.scalars(
            select(models.IngestBatch).where(
                models.IngestBatch.exchange_id == exchange.id,
                models.IngestBatch.received_at >= start,
                models.IngestBatch.received_at < stop,
            )
        ).all()
        ids = [b.id for b in batches]
        reasons: dict[str, int] = {}
        for b in batches:
            for code, count in (b.rejections_by_reason or {}).items():
                reasons[code] = reasons.get(code, 0) + int(count)
        rows = sum(b.rows_total for b in batches)
        rejected = sum(b.rejected for b in batches)
        batch_ids = select(models.IngestBatch.id).where(
            models.IngestBatch.exchange_id == exchange.id,
            models.IngestBatch.received_at >= start,
            models.IngestBatch.received_at < stop,
        )
        trades = after_window = 0
        if ids:
            trades, after_window = session.execute(
                select(func.count(), func.count().filter(frozen))
                .select_from(models.Trade)
                .where(models.Trade.batch_id.in_(batch_ids))
            ).one()
        out.append(
            ExchangeHealth(
                code=exchange.code,
                name=exchange.name,
                last_batch_at=last_batch_at,
                batches=len(batches),
                rows=rows,
                accepted=sum(b.accepted for b in batches),
                duplicates=sum(b.duplicates for b in batches),
                rejected=rejected,
                held=sum(b.held for b in batches),
                trades=trades,
                rejection_rate=rejected / rows if rows else None,
                rejections_by_reason=dict(sorted(reasons.items())),
                after_correction_window=after_window,
                seq=_sequence(session, batch_ids),
                dead_batches=dead.get(exchange.id, 0),
                queued_batches=waiting.get(exchange.id, 0),
            )
        )
    unattributed = dead.get(None, 0) if exchange_id is None else 0
    return FeedHealth(
        date=day, timezone=calendar.zone.key, exchanges=out, dead_without_exchange=unattributed
    )


MAX_REJECTIONS_SHOWN = 10_000


@dataclass(frozen=True)
class RejectedRow:
    exchange: str
    batch_id: int
    received_at: dt.datetime
    filename: str | None
    row: int
    trade_id: str | None
    field: str
    code: str
    message: str


@dataclass(frozen=True)
class UnrecordedBatch:
    """A batch whose rejected rows were not kept (received before they were): its counts."""

    exchange: str
    batch_id: int
    received_at: dt.datetime
    rejected: int
    rejections_by_reason: dict[str, int]


@dataclass(frozen=True)
class FeedRejections:
    date: dt.date
    timezone: str
    exchange: str | None
    """The exchange whose rows these are; ``None``: every exchange's."""
    batches: int
    rejected: int
    shown: int
    limit: int
    rejections: list[RejectedRow]
    unrecorded: list[UnrecordedBatch]


def feed_rejections(
    session: Session,
    calendar: Calendar,
    archive_dir: Path,
    day: dt.date,
    limit: int,
    *,
    exchange_id: int | None = None,
) -> FeedRejections:
    """The rejected rows of the batches received on ``day`` (local), of the exchange
    ``exchange_id`` or of every exchange, in batch and row order, at most ``limit`` of them;
    ``rejected`` counts them all. Each batch's rows come from the record kept beside the
    archive when it was stored (:func:`ingest.results.record_rejections`)."""
    start, stop = calendar.at(day), calendar.at(day + dt.timedelta(days=1))
    query = (
        select(models.IngestBatch, models.Exchange.code)
        .join(models.Exchange, models.Exchange.id == models.IngestBatch.exchange_id)
        .where(
            models.IngestBatch.received_at >= start,
            models.IngestBatch.received_at < stop,
            models.IngestBatch.rejected > 0,
        )
        .order_by(models.IngestBatch.id)
    )
    if exchange_id is not None:
        query = query.where(models.IngestBatch.exchange_id == exchange_id)
    batches = session.execute(query).all()
    rows: list[RejectedRow] = []
    unrecorded = []
    for batch, code in batches:
        if len(rows) >= limit:
            break
        received = dt.datetime.fromisoformat(batch_stamp(batch).received_at)
        kept = recorded_rejections(archive_dir, batch, limit - len(rows))
        if kept is None:
            counts = dict(batch.rejections_by_reason or {})
            unrecorded.append(UnrecordedBatch(code, batch.id, received, batch.rejected, counts))
            continue
        rows.extend(
            RejectedRow(code, batch.id, received, batch.filename, **r.__dict__) for r in kept
        )
    named = None
    if exchange_id is not None:
        named = session.get(models.Exchange, exchange_id).code
    return FeedRejections(
        date=day,
        timezone=calendar.zone.key,
        exchange=named,
        batches=len(batches),
        rejected=sum(batch.rejected for batch, _ in batches),
        shown=len(rows),
        limit=limit,
        rejections=rows,
        unrecorded=unrecorded,
    )
