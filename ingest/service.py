"""Ingest trades: validate, normalise, store idempotently, revise, mark restatements.

One batch is one transaction: the batch record, its new trades, its cancels and amends
and its restatement marks commit together or not at all. Re-sent trades hit
``UNIQUE(exchange_id, trade_id)`` and count as duplicates; rejected rows are reported with
their reason and never stored. Within a batch, new trades are stored first, then cancels
and amends in row order.

A file is read in batches of ``rows_per_batch`` rows (bounded memory: the next batch is
read ahead by a thread and two are checked in worker threads while the previous one is
stored), each recorded as its own ``ingest_batches`` row that references the file's
archive. Given an ``Engine``,
each batch commits on its own, so an interrupted file keeps the batches done and running
it again stores only the rest (the others are duplicates); given a ``Session``, the whole
file is one transaction of the caller's.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, exists, func, select
from sqlalchemy.orm import Session

from audit.chain import chain_batch
from bcpi.catalogue import Catalogue
from bcpi.errors import BcpiError, Forbidden, IngestError
from bcpi.settings import Settings, get_settings
from ingest.archive import archive_file
from ingest.fields import ALL_FIELDS, EXCHANGE_FIELD, TradeStatus
from ingest.fx import fx_table, release_held_trades
from ingest.marks import mark_published_days, published_days
from ingest.normalise import stored_frame
from ingest.readers import feed_batches, feed_format, prefetched, scan_feed
from ingest.results import IngestResult, Rejection
from ingest.revisions import apply_revisions
from ingest.rules import FeedRules, FxTable, day_bounds, feed_rules
from ingest.validate import (
    REJECT_CODE,
    REJECT_FIELD,
    REJECT_MESSAGE,
    ROW,
    validated_frame,
)
from reliability.faults import fault_point
from store import models
from store.db import session_scope
from store.reference import get_exchange
from store.upsert import insert_trades

KEPT_REJECTIONS = 10_000
REJECTION_SCHEMA = {
    "row": pl.Int64,
    "trade_id": pl.String,
    "field": pl.String,
    "code": pl.String,
    "message": pl.String,
}
REJECTED_ROW_SCHEMA = {
    "row": pl.Int64,
    "field": pl.String,
    "code": pl.String,
    "message": pl.String,
    **dict.fromkeys(ALL_FIELDS, pl.String),
}

__all__ = ["BatchRejected", "IngestResult", "Rejection", "ingest_file", "ingest_frame"]


class BatchRejected(BcpiError):
    """``atomic`` was asked and some row is invalid: nothing of the batch is stored."""

    status_code = 422

    def __init__(self, result: IngestResult) -> None:
        super().__init__(
            f"{result.rejected} row(s) invalid; with atomic=true nothing was stored",
            rejected=result.rejected,
        )
        self.result = result


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


def ingest_context(
    session: Session,
    catalogue: Catalogue,
    exchange_code: str,
    *,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
    atomic: bool = False,
) -> IngestContext:
    settings = settings or get_settings()
    exchange = get_exchange(session, exchange_code)
    return IngestContext(
        exchange_id=exchange.id,
        exchange_code=exchange.code,
        rules=feed_rules(session, catalogue, settings.timezone),
        fx=fx_table(session),
        now=now or dt.datetime.now(dt.UTC),
        future_tolerance=settings.future_tolerance,
        atomic=atomic,
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
) -> set[tuple[int, dt.date, str]]:
    """Published days that this batch added an active trade to."""
    days = new.filter(pl.col("status") == TradeStatus.ACTIVE.value)
    pairs = set(days.select("commodity_id", "trading_date").unique().iter_rows())
    marks = set()
    for commodity_id, day in published_days(session, pairs) if pairs else ():
        start, stop = day_bounds(day, ctx.rules.zone)
        added = session.scalar(
            select(
                exists().where(
                    models.Trade.batch_id == batch_id,
                    models.Trade.commodity_id == commodity_id,
                    models.Trade.status == TradeStatus.ACTIVE.value,
                    models.Trade.traded_at >= start,
                    models.Trade.traded_at < stop,
                )
            )
        )
        if added:
            marks.add((commodity_id, day, "late_trade"))
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
    good, bad, received, rows = pl.collect_all(
        [
            stored_frame(checked.filter(~rejected)),
            checked.filter(rejected).select(
                ROW, "trade_id__raw", REJECT_FIELD, REJECT_CODE, REJECT_MESSAGE
            ),
            checked.filter(rejected | (pl.col("action") != "new")).select(
                ROW, *(pl.col(f"{n}__raw").cast(pl.String).alias(n) for n in ALL_FIELDS)
            ),
            checked.select(pl.len()),
        ]
    )
    return CheckedBatch(rows.item(), good, bad, received)


def ingest_batch(
    session: Session,
    ctx: IngestContext,
    feed: pl.LazyFrame | pl.DataFrame | None,
    source: BatchSource,
    *,
    keep_rejected_rows: bool = False,
    checked: CheckedBatch | None = None,
) -> IngestResult:
    """Validate, normalise and store one batch in ``session``'s transaction (``checked``:
    the batch already through :func:`check_batch`)."""
    if checked is None:
        assert feed is not None, "a batch needs its rows or their check"
        checked = check_batch(ctx, feed, source.first_row)
    bad = checked.bad
    rejections = _rejections(bad)
    by_reason = Counter(dict(bad[REJECT_CODE].value_counts().iter_rows()))
    if ctx.atomic and bad.height:
        raise BatchRejected(
            IngestResult(None, rejected=bad.height, rejections=rejections, by_reason=by_reason)
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

    inserted = insert_trades(
        session,
        new.with_columns(
            pl.lit(ctx.exchange_id).alias("exchange_id"),
            pl.lit(batch.id).alias("batch_id"),
            pl.lit(0).alias("revision"),
        ),
    )
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
        zone=ctx.rules.zone,
        now=ctx.now,
    )
    rejections += revised.rejections
    by_reason.update(r.code for r in revised.rejections)
    rejected = bad.height + len(revised.rejections)
    if ctx.atomic and revised.rejections:
        raise BatchRejected(
            IngestResult(None, rejected=rejected, rejections=rejections, by_reason=by_reason)
        )
    mark_published_days(
        session, _late_trade_days(session, ctx, batch.id, new) | revised.marks, now=ctx.now
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
        by_reason=by_reason,
        batch_ids=[batch.id],
        rows=checked.rows,
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
    if keep_rejected_rows and result.rejections:
        result.rejected_rows = _rejected_rows(checked.received, result.rejections)
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
) -> IngestResult:
    """One batch from a frame already read (the HTTP path and tests)."""
    ctx = ingest_context(
        session, catalogue, exchange_code, settings=settings, now=now, atomic=atomic
    )
    frame = feed.collect() if isinstance(feed, pl.LazyFrame) else feed
    check_exchange_column(frame, ctx.exchange_code)
    return ingest_batch(
        session,
        ctx,
        frame,
        BatchSource(source, fmt or source, sha256, archive_path, filename),
    )


def ingest_file(
    target: Session | Engine,
    catalogue: Catalogue,
    path: Path,
    exchange_code: str,
    *,
    archive_dir: Path | None = None,
    rows_per_batch: int | None = None,
    rejected_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> IngestResult:
    """Ingest a CSV or Parquet file in batches (see the module docstring for transactions).

    Every rejected row is written to ``rejected_path`` (CSV) when given; the result keeps
    at most ``KEPT_REJECTIONS`` of them.
    """
    settings = settings or get_settings()
    path = Path(path)
    fmt = feed_format(path)
    scan_feed(path)  # a clear error for a missing file before anything is archived
    rows = rows_per_batch or settings.rows_per_batch

    def unit_of_work() -> AbstractContextManager[Session]:
        if isinstance(target, Session):
            return nullcontext(target)
        return session_scope(target)

    with unit_of_work() as session:
        ctx = ingest_context(session, catalogue, exchange_code, settings=settings, now=now)
    archived = archive_file(archive_dir or settings.archive_dir, exchange_code, path, fmt)
    total = IngestResult(None)
    writer = _RejectionWriter(rejected_path)

    def store(first_row: int, checked: CheckedBatch) -> None:
        with unit_of_work() as session:
            source = BatchSource("file", fmt, archived.sha256, archived.path, path.name, first_row)
            result = ingest_batch(
                session,
                ctx,
                None,
                source,
                keep_rejected_rows=rejected_path is not None,
                checked=checked,
            )
        writer.write(result.rejected_rows)
        result.rejected_rows = None
        total.add(result, keep=KEPT_REJECTIONS)
        if progress:
            progress(checked.rows)

    try:
        for first_row, checked in checked_batches(ctx, _read_batches(path, rows)):
            store(first_row, checked)
        if not total.batch_ids:
            store(1, check_batch(ctx, scan_feed(path).head(0).collect()))
    finally:
        writer.close()
    if total.held:
        # rates loaded while the file was read: release what they cover
        with unit_of_work() as session:
            release_held_trades(
                session, feed_rules(session, catalogue, settings.timezone), now=ctx.now
            )
    return total


def checked_batches(
    ctx: IngestContext, batches: Iterator[pl.DataFrame], workers: int = 2
) -> Iterator[tuple[int, CheckedBatch]]:
    """(first row, checked batch) in order; ``workers`` batches are checked at once in
    threads (Polars releases the GIL) while the caller stores the previous one."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feed-check") as pool:
        pending: deque = deque()
        first_row = 1
        for chunk in batches:
            check_exchange_column(chunk, ctx.exchange_code)
            pending.append((first_row, pool.submit(check_batch, ctx, chunk, first_row)))
            first_row += chunk.height
            if len(pending) >= workers:
                start, future = pending.popleft()
                yield start, future.result()
        while pending:
            start, future = pending.popleft()
            yield start, future.result()


def _read_batches(path: Path, rows: int) -> Iterator[pl.DataFrame]:
    batches = prefetched(feed_batches(path, rows))
    done = 0
    while True:
        try:
            chunk = next(batches)
        except StopIteration:
            return
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
            where = f" after row {done}" if done else ""
            raise IngestError(
                f"{path.name}: cannot be read as a trade feed{where}: {exc}", path=str(path)
            ) from exc
        done += chunk.height
        yield chunk


class _RejectionWriter:
    """Streams rejected rows to a CSV file (created even when there are none)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file = None
        if path is not None:
            self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
            pl.DataFrame(schema=REJECTED_ROW_SCHEMA).write_csv(self._file)

    def write(self, rows: pl.DataFrame | None) -> None:
        if self._file is not None and rows is not None and rows.height:
            rows.select(list(REJECTED_ROW_SCHEMA)).write_csv(self._file, include_header=False)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
