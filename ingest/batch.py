"""One batch of trades: validate, normalise, store idempotently, revise, mark restatements.

One batch is one transaction: the batch record, its new trades, its cancels and amends
and its restatement marks commit together or not at all. The costly part, parsing and
checking every row (:func:`check_batch`), needs only the reference data read into an
:class:`IngestContext`; :func:`prepare` does it before the write transaction opens, so a
large or hostile batch never holds the write lock while it is checked, and
:func:`current` re-checks it inside the transaction only if that reference data
changed meanwhile. Re-sent trades hit
``UNIQUE(exchange_id, trade_id)`` and count as duplicates; rejected rows are reported with
their reason and never stored. Within a batch, new trades are stored first, then cancels
and amends in row order. Pushes (:mod:`ingest.push`) and files (:mod:`ingest.files`) both
come through here. Every trade stored keeps its batch's receipt instant (``received_at``)
and the participant codes and affiliation its exchange sent. A batch's rejected rows are
recorded beside the archive before it commits (:func:`ingest.results.record_rejections`),
and the new trades it stored for publication days before the correction window are named
in its result's warning (:func:`ingest.health.after_window_warning`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.catalogue import Catalogue
from core.errors import BatchRejected, Forbidden, IngestError
from core.faults import fault_point
from core.fields import (
    ALL_FIELDS,
    EXCHANGE_FIELD,
    Reason,
    TradeStatus,
)
from core.settings import Settings, get_settings
from ingest.fx import fx_table
from ingest.health import after_window_warning
from ingest.marks import mark_published_days, published_days
from ingest.normalise import stored_frame
from ingest.results import IngestResult, Rejection, record_rejections
from ingest.revisions import apply_revisions
from ingest.rules import FeedRules, FxTable, feed_rules
from ingest.validate import (
    REJECT_CODE,
    REJECT_FIELD,
    REJECT_MESSAGE,
    ROW,
    validated_frame,
)
from store import models
from store.ledger import chain_batch
from store.reference import get_exchange
from store.upsert import insert_trades

REJECTION_SCHEMA = {
    "row": pl.Int64,
    "trade_id": pl.String,
    "field": pl.String,
    "code": pl.String,
    "message": pl.String,
}


@dataclass(frozen=True)
class BatchSource:
    source: str  # "http" or "file"
    format: str
    sha256: str
    archive_path: str | None
    filename: str | None = None
    first_row: int = 1


@dataclass(frozen=True)
class IngestContext:
    exchange_id: int
    exchange_code: str
    rules: FeedRules
    fx: FxTable
    now: dt.datetime
    future_tolerance: dt.timedelta
    atomic: bool = False
    reference: tuple | None = None
    """What the rules and FX table were read from (:func:`reference_state`)."""
    archive_dir: Path | None = None
    """Where the batch's bytes are archived; its rejected rows are recorded beside it."""


def reference_state(session: Session) -> tuple:
    """A cheap fingerprint of the reference data a batch is checked against: commodities
    and FX rates are only ever added, so their counts and highest ids change with them."""
    return tuple(
        session.execute(select(func.count(), func.max(table.id))).one()
        for table in (models.Commodity, models.FxRate)
    )


def ingest_context(
    session: Session,
    catalogue: Catalogue,
    exchange_code: str,
    *,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
    atomic: bool = False,
    calendar: Calendar | None = None,
) -> IngestContext:
    settings = settings or get_settings()
    exchange = get_exchange(session, exchange_code)
    reference = reference_state(session)
    return IngestContext(
        exchange_id=exchange.id,
        exchange_code=exchange.code,
        rules=feed_rules(session, catalogue, calendar or Calendar.from_settings(settings)),
        fx=fx_table(session),
        now=(now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
        future_tolerance=settings.future_tolerance,
        atomic=atomic,
        reference=reference,
        archive_dir=settings.archive_dir,
    )


def check_exchange_column(frame: pl.DataFrame, exchange_code: str) -> None:
    """A payload may name its exchange; naming another one refuses the whole batch."""
    if EXCHANGE_FIELD not in frame.columns:
        return
    dtype = frame.schema[EXCHANGE_FIELD]
    if not (dtype in (pl.String, pl.Null) or isinstance(dtype, (pl.Categorical, pl.Enum))):
        raise IngestError(f"exchange must be text (the key's own exchange code), not {dtype}")
    named = frame.select(pl.col(EXCHANGE_FIELD).cast(pl.String).str.strip_chars())
    others = named.filter(
        pl.col(EXCHANGE_FIELD).is_not_null() & (pl.col(EXCHANGE_FIELD) != exchange_code)
    )
    if others.height:
        raise Forbidden(
            f"this key writes for exchange {exchange_code!r} only; {others.height} row(s)"
            f" name another exchange",
            exchange=exchange_code,
        )


def _rejections(bad: pl.DataFrame) -> list[Rejection]:
    return [
        Rejection(*r)
        for r in bad.select(
            ROW, "trade_id__raw", REJECT_FIELD, REJECT_CODE, REJECT_MESSAGE
        ).iter_rows()
    ]


def _late_trade_days(
    session: Session, ctx: IngestContext, batch_id: int, new: pl.DataFrame
) -> set[tuple[int, dt.date, str, str]]:
    """Published days that this batch added an active trade to."""
    days = new.filter(pl.col("status") == TradeStatus.ACTIVE.value)
    pairs = set(days.select("commodity_id", "window_day").unique().iter_rows())
    marks = set()
    for commodity_id, day in published_days(session, pairs) if pairs else ():
        start, stop = ctx.rules.window(commodity_id, day)
        added = session.scalar(
            select(
                exists().where(
                    models.Trade.batch_id == batch_id,
                    models.Trade.commodity_id == commodity_id,
                    models.Trade.status == TradeStatus.ACTIVE.value,
                    models.Trade.traded_at > start,
                    models.Trade.traded_at <= stop,
                )
            )
        )
        if added:
            marks.add((commodity_id, day, "late_trade", f"batch {batch_id}"))
    return marks


def _rejected_rows(received: pl.DataFrame, rejections: list[Rejection]) -> pl.DataFrame:
    """Each rejected row as received (every field as text) after its row, field and code."""
    reasons = pl.DataFrame([r.__dict__ for r in rejections], schema=REJECTION_SCHEMA).drop(
        "trade_id"
    )
    return reasons.join(received, on=ROW, how="left").sort(ROW)


@dataclass(frozen=True)
class CheckedBatch:
    """A batch through validation: ``good`` (valid rows as they are stored), ``bad`` (the
    rejected rows' number, trade id and reason) and ``received`` (every field as text, for
    the rejected rows and the cancels and amends only)."""

    rows: int
    good: pl.DataFrame
    bad: pl.DataFrame
    received: pl.DataFrame
    banded: pl.DataFrame
    """Rows the price band refused: ``commodity_id``, ``window_day``, the band, ``rows``."""


def check_batch(
    ctx: IngestContext, feed: pl.LazyFrame | pl.DataFrame, first_row: int = 1
) -> CheckedBatch:
    """Every row of a batch parsed, normalised and checked (no I/O: safe in a thread)."""
    checked = validated_frame(
        feed.lazy(),
        ctx.rules,
        ctx.fx,
        now=ctx.now,
        future_tolerance=ctx.future_tolerance,
        row_offset=first_row,
    )
    rejected = pl.col(REJECT_CODE).is_not_null()
    good, bad, received, rows, banded = pl.collect_all(
        [
            stored_frame(checked.filter(~rejected)),
            checked.filter(rejected).select(
                ROW, "trade_id__raw", REJECT_FIELD, REJECT_CODE, REJECT_MESSAGE
            ),
            checked.filter(rejected | (pl.col("action") != "new")).select(
                ROW, *(pl.col(f"{n}__raw").cast(pl.String).alias(n) for n in ALL_FIELDS)
            ),
            checked.select(pl.len()),
            checked.filter(pl.col(REJECT_CODE) == Reason.PRICE_OUT_OF_BAND.value)
            .group_by("commodity_id", "window_day", "band_low", "band_high")
            .agg(pl.len().cast(pl.Int64).alias("rows")),
        ]
    )
    return CheckedBatch(rows.item(), good, bad, received, banded)


@dataclass(frozen=True)
class PreparedBatch:
    """A batch checked against the reference data of ``ctx``, ready to store."""

    ctx: IngestContext
    checked: CheckedBatch
    rows: pl.DataFrame


def prepare(
    session: Session,
    catalogue: Catalogue,
    exchange_code: str,
    frame: pl.DataFrame,
    *,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
    atomic: bool = False,
    calendar: Calendar | None = None,
    first_row: int = 1,
) -> PreparedBatch:
    """Read the reference data in ``session`` (a read-only snapshot will do), then check
    ``frame`` against it; no write happens, so no write lock is needed."""
    ctx = ingest_context(
        session,
        catalogue,
        exchange_code,
        settings=settings,
        now=now,
        atomic=atomic,
        calendar=calendar,
    )
    check_exchange_column(frame, ctx.exchange_code)
    return PreparedBatch(ctx, check_batch(ctx, frame, first_row), frame)


def current(
    session: Session,
    catalogue: Catalogue,
    prepared: PreparedBatch,
    *,
    settings: Settings | None = None,
    calendar: Calendar | None = None,
    first_row: int = 1,
) -> PreparedBatch:
    """``prepared`` if the reference data it was checked against is still what ``session``
    sees, else the batch checked again against what it sees now."""
    if reference_state(session) == prepared.ctx.reference:
        return prepared
    ctx = prepared.ctx
    return prepare(
        session,
        catalogue,
        ctx.exchange_code,
        prepared.rows,
        settings=settings,
        now=ctx.now,
        atomic=ctx.atomic,
        calendar=calendar,
        first_row=first_row,
    )


def ingest_batch(
    session: Session,
    ctx: IngestContext,
    feed: pl.LazyFrame | pl.DataFrame | None,
    source: BatchSource,
    *,
    rejected_rows: Callable[[pl.DataFrame], None] | None = None,
    checked: CheckedBatch | None = None,
) -> IngestResult:
    """Validate, normalise and store one batch in ``session``'s transaction (``checked``:
    the batch already through :func:`check_batch`); ``rejected_rows`` receives the rejected
    rows as received, after their row number, field and reason."""
    if checked is None:
        assert feed is not None, "a batch needs its rows or their check"
        checked = check_batch(ctx, feed, source.first_row)
    bad = checked.bad
    rejections = _rejections(bad)
    by_reason = Counter(dict(bad[REJECT_CODE].value_counts().iter_rows()))
    if ctx.atomic and bad.height:
        raise BatchRejected(
            IngestResult(
                None, rejected=bad.height, rejections=rejections, by_reason=dict(by_reason)
            )
        )
    good = checked.good
    new = good.filter(pl.col("action") == "new")

    batch = models.IngestBatch(
        exchange_id=ctx.exchange_id,
        source=source.source,
        format=source.format,
        filename=source.filename,
        sha256=source.sha256,
        archive_path=source.archive_path,
        first_row=source.first_row,
        received_at=ctx.now,
        rows_total=checked.rows,
    )
    session.add(batch)
    session.flush()
    if checked.banded.height:
        session.execute(
            models.BandRejection.__table__.insert(),
            checked.banded.with_columns(pl.lit(batch.id).alias("batch_id")).to_dicts(),
        )

    new = new.with_columns(
        pl.lit(ctx.exchange_id).alias("exchange_id"),
        pl.lit(batch.id).alias("batch_id"),
        pl.lit(0).alias("revision"),
        pl.lit(ctx.now, dtype=pl.Datetime("us", "UTC")).alias("received_at"),
    )
    inserted = insert_trades(session, new)
    fault_point("mid_batch")  # test-only (BCPI_FAULT_POINT); inert otherwise
    held = 0
    if new.filter(pl.col("status") == TradeStatus.HELD.value).height:
        held = session.scalar(
            select(func.count())
            .select_from(models.Trade)
            .where(models.Trade.batch_id == batch.id, models.Trade.status == TradeStatus.HELD.value)
        )
    revised = apply_revisions(
        session,
        exchange_id=ctx.exchange_id,
        batch_id=batch.id,
        revisions=good.filter(pl.col("action") != "new"),
        rules=ctx.rules,
        now=ctx.now,
    )
    rejections += revised.rejections
    by_reason.update(r.code for r in revised.rejections)
    rejected = bad.height + len(revised.rejections)
    if ctx.atomic and revised.rejections:
        raise BatchRejected(
            IngestResult(None, rejected=rejected, rejections=rejections, by_reason=dict(by_reason))
        )
    mark_published_days(
        session, _late_trade_days(session, ctx, batch.id, new) | revised.marks, now=ctx.now
    )
    late = after_window_warning(
        session, ctx.rules.calendar, ctx.now, batch.id, new, all_stored=inserted == new.height
    )

    result = IngestResult(
        batch.id,
        accepted=inserted + revised.cancelled + revised.amended,
        duplicates=(new.height - inserted) + revised.duplicates,
        rejected=rejected,
        held=held + revised.held,
        cancelled=revised.cancelled,
        amended=revised.amended,
        rejections=sorted(rejections, key=lambda r: r.row),
        by_reason=dict(by_reason),
        batch_ids=[batch.id],
        rows=checked.rows,
        warnings=[late] if late else [],
    )
    batch.accepted, batch.duplicates, batch.rejected = (
        result.accepted,
        result.duplicates,
        result.rejected,
    )
    batch.held, batch.revised = result.held, revised.cancelled + revised.amended
    batch.rejections_by_reason = dict(by_reason) or None
    chain_batch(session, batch)
    session.flush()
    if ctx.archive_dir is not None:
        record_rejections(ctx.archive_dir, batch, result.rejections)
    if rejected_rows is not None and result.rejections:
        rejected_rows(_rejected_rows(checked.received, result.rejections))
    return result


def ingest_frame(
    session: Session,
    catalogue: Catalogue,
    feed: pl.LazyFrame | pl.DataFrame,
    *,
    exchange_code: str,
    source: str,
    sha256: str,
    filename: str | None = None,
    now: dt.datetime | None = None,
    archive_path: str | None = None,
    fmt: str | None = None,
    atomic: bool = False,
    settings: Settings | None = None,
    calendar: Calendar | None = None,
) -> IngestResult:
    """One batch from a frame already read, checked and stored in ``session``'s
    transaction (tests and single-trade changes; a push checks first, see :func:`prepare`)."""
    frame = feed.collect() if isinstance(feed, pl.LazyFrame) else feed
    prepared = prepare(
        session,
        catalogue,
        exchange_code,
        frame,
        settings=settings,
        now=now,
        atomic=atomic,
        calendar=calendar,
    )
    return ingest_batch(
        session,
        prepared.ctx,
        None,
        BatchSource(source, fmt or source, sha256, archive_path, filename),
        checked=prepared.checked,
    )
