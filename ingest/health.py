"""Feed health: per exchange, the last batch and for one day its batches' rows by outcome,
rejection reasons, trades stored and gaps in its sequence numbers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, false, func, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from core.calendar import Calendar
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


@dataclass(frozen=True)
class FeedHealth:
    date: dt.date
    timezone: str
    exchanges: list[ExchangeHealth]


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


def _frozen_windows(session: Session, calendar: Calendar, day: dt.date):
    """A trade arriving on ``day`` is after the correction window when its window belongs
    to a publication day before the window: traded at or before that day's cut-off."""
    window = calendar.methodology.publication.correction_window_days
    last_frozen = calendar.previous_publication_day(calendar.publication_days_before(day, window))
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


def feed_health(session: Session, calendar: Calendar, day: dt.date) -> FeedHealth:
    """Every exchange's health over the batches received on ``day`` (local)."""
    start, stop = calendar.at(day), calendar.at(day + dt.timedelta(days=1))
    frozen = _frozen_windows(session, calendar, day)
    out = []
    for exchange in session.scalars(select(models.Exchange).order_by(models.Exchange.code)):
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
            )
        )
    return FeedHealth(date=day, timezone=calendar.zone.key, exchanges=out)
