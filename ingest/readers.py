"""Read trade feeds: files in bounded-memory batches, HTTP bodies in every accepted format.

Text formats are read with every column as text (no type inference: NDJSON and JSON use
an explicit String schema, so ``1.9`` stays ``"1.9"`` and is parsed strictly later);
Parquet and Arrow keep their column types, which the validators check.
"""

from __future__ import annotations

import io
import json
import queue
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from core.errors import IngestError, PayloadTooLarge, UnsupportedMediaType
from core.fields import ALL_FIELDS, EXCHANGE_FIELD

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MEDIA_TYPES = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/x-jsonlines": "ndjson",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/vnd.apache.arrow.stream": "arrow",
}
TEXT_SCHEMA = {name: pl.String for name in (*ALL_FIELDS, EXCHANGE_FIELD)}


def feed_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise IngestError(
            f"{path.name}: unsupported file type {path.suffix!r};"
            f" expected one of {sorted(FORMATS)}",
            path=str(path),
        ) from None


def scan_feed(path: Path) -> pl.LazyFrame:
    if not path.is_file():
        raise IngestError(f"{path}: no such file", path=str(path))
    if feed_format(path) == "csv":
        return pl.scan_csv(path, infer_schema=False)
    return pl.scan_parquet(path)


def feed_batches(path: Path, rows: int) -> Iterator[pl.DataFrame]:
    """The file's rows in order, at most ``rows`` at a time, never the whole file at once."""
    pending: list[pl.DataFrame] = []
    held = 0
    for chunk in scan_feed(path).collect_batches(chunk_size=rows):
        pending.append(chunk)
        held += chunk.height
        while held >= rows:
            joined = pl.concat(pending, how="vertical") if len(pending) > 1 else pending[0]
            yield joined.slice(0, rows)
            rest = joined.slice(rows)
            pending, held = ([rest], rest.height) if rest.height else ([], 0)
    if held:
        yield pl.concat(pending, how="vertical") if len(pending) > 1 else pending[0]


def prefetched(batches: Iterator[pl.DataFrame], depth: int = 1) -> Iterator[pl.DataFrame]:
    """``batches``, read ahead by a thread (at most ``depth`` waiting), so reading the next
    batch overlaps with processing this one. Errors of the reader surface in order."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def reader() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put((batch, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put((None, exc))

    thread = threading.Thread(target=reader, name="feed-reader", daemon=True)
    thread.start()
    try:
        while True:
            batch, error = slots.get()
            if error is not None:
                raise error
            if batch is done:
                return
            yield batch
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)


def media_format(content_type: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        return MEDIA_TYPES[media]
    except KeyError:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not a trade feed format; use one of "
            + ", ".join(sorted(MEDIA_TYPES)),
        ) from None


class GzipLimiter:
    """Decompress a gzip stream piece by piece, refusing to produce more than ``limit``.

    Each piece is at most ``PIECE`` bytes, so a bomb costs the limit and one piece, not the
    limit twice (the piece that crosses it would otherwise be as large as the limit)."""

    PIECE = 1024 * 1024

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._parts: list[bytes] = []

    def feed(self, data: bytes) -> None:
        try:
            while data:
                out = self._inflate.decompress(data, min(self.PIECE, self.limit - self.size + 1))
                self._take(out)
                data = self._inflate.unconsumed_tail
        except zlib.error as exc:
            raise IngestError(f"body is not valid gzip: {exc}") from exc

    def _take(self, out: bytes) -> None:
        self.size += len(out)
        if self.size > self.limit:
            raise PayloadTooLarge(f"decompressed body exceeds {self.limit} bytes")
        self._parts.append(out)

    def finish(self) -> bytes:
        try:
            self._take(self._inflate.flush())
        except zlib.error as exc:
            raise IngestError(f"body is not valid gzip: {exc}") from exc
        if not self._inflate.eof:
            raise IngestError("body is not valid gzip: the stream is truncated")
        return b"".join(self._parts)


def _python_json_rows(rows: object) -> pl.DataFrame:
    """Rows parsed by Python's json (numbers and NaN/Infinity kept as their text)."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise IngestError("body must be a JSON array of objects (one per trade)")

    def text(value: object) -> str | None:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value, separators=(",", ":"))

    columns = {name: [text(r.get(name)) for r in rows] for name in TEXT_SCHEMA}
    return pl.DataFrame(columns, schema=TEXT_SCHEMA)


def _loads(text: str) -> object:
    return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)


def _read_json(data: bytes) -> pl.DataFrame:
    if not data.lstrip()[:1] == b"[":
        raise IngestError("body must be a JSON array of objects (one per trade)")
    try:
        return pl.read_json(io.BytesIO(data), schema=TEXT_SCHEMA)
    except pl.exceptions.PolarsError:
        pass  # NaN/Infinity tokens or numbers beyond float range: Python's parser keeps them
    try:
        return _python_json_rows(_loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IngestError(f"body is not valid JSON: {exc}") from exc


def _read_ndjson(data: bytes) -> pl.DataFrame:
    try:
        return pl.read_ndjson(io.BytesIO(data), schema=TEXT_SCHEMA)
    except pl.exceptions.PolarsError:
        pass
    rows = []
    try:
        # Lines end at "\n" only: splitlines() would also split inside a JSON string that
        # holds U+2028, U+0085 or another Unicode line break, which JSON leaves unescaped.
        for number, line in enumerate(data.decode("utf-8").split("\n"), start=1):
            if line.strip():
                try:
                    rows.append(_loads(line))
                except json.JSONDecodeError as exc:
                    raise IngestError(f"body line {number} is not valid JSON: {exc}") from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise IngestError(f"body is not valid NDJSON: {exc}") from exc
    return _python_json_rows(rows)


def read_body(data: bytes, fmt: str) -> pl.DataFrame:
    """A pushed body as a frame; ``IngestError`` (422) when it cannot be read at all."""
    try:
        if fmt == "json":
            return _read_json(data)
        if fmt == "ndjson":
            return _read_ndjson(data)
        if fmt == "csv":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise IngestError(f"CSV body is not UTF-8: {exc}") from exc
            return pl.read_csv(io.BytesIO(data), infer_schema=False)
        if fmt == "parquet":
            return pl.read_parquet(io.BytesIO(data))
        if fmt == "arrow":
            return pl.read_ipc_stream(io.BytesIO(data))
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, ValueError) as exc:
        raise IngestError(f"body cannot be read as {fmt}: {exc}") from exc
    raise IngestError(f"unknown format {fmt!r}")
