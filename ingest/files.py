"""Trade files of any size: read in batches, checked ahead in threads, each batch stored
as its own transaction.

A file is read in batches of ``rows_per_batch`` rows (bounded memory: the next batch is
read ahead by a thread and two are checked in worker threads while the previous one is
stored), each recorded as its own ``ingest_batches`` row that references the file's
archive. Given an ``Engine``, each batch commits on its own, so an interrupted file keeps
the batches done and running it again stores only the rest (the others are duplicates);
given a ``Session``, the whole file is one transaction of the caller's. Every rejected row
can be written, as received, to a CSV beside its reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import polars as pl
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.catalogue import Catalogue
from core.errors import IngestError
from core.fields import ALL_FIELDS
from core.settings import Settings, get_settings
from ingest.archive import archive_file
from ingest.batch import (
    BatchSource,
    CheckedBatch,
    IngestContext,
    check_batch,
    check_exchange_column,
    ingest_batch,
    ingest_context,
)
from ingest.fx import release_held_trades
from ingest.readers import feed_batches, feed_format, prefetched, scan_feed
from ingest.results import IngestResult
from store.db import session_scope

KEPT_REJECTIONS = 10_000
REJECTED_ROW_SCHEMA = {
    "row": pl.Int64,
    "field": pl.String,
    "code": pl.String,
    "message": pl.String,
    **dict.fromkeys(ALL_FIELDS, pl.String),
}


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
    calendar: Calendar | None = None,
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
        ctx = ingest_context(
            session, catalogue, exchange_code, settings=settings, now=now, calendar=calendar
        )
    ctx = dataclasses.replace(ctx, archive_dir=archive_dir or settings.archive_dir)
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
                rejected_rows=writer.write if rejected_path is not None else None,
                checked=checked,
            )
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
            release_held_trades(session, ctx.rules, now=ctx.now)
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
