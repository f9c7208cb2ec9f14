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
from core.fields import ALL_FIELDS, COLUMN_NAMES, EXCHANGE_FIELD, REQUIRED_FIELDS
from ingest import limits as checks
from ingest.limits import Limits

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
DELIMITERS = (",", ";", "\t")
HEADER_SAMPLE = 64 * 1024


def feed_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise IngestError(
            f"{path.name}: unsupported file type {path.suffix!r};"
            f" expected one of {sorted(FORMATS)}",
            path=str(path),
        ) from None


def _file_header(path: Path) -> bytes:
    """The first line of a CSV file, read a piece at a time; 413 once it holds more
    delimiters than ``MAX_COLUMNS`` columns allow of any delimiter."""
    header = b""
    with path.open("rb") as feed:
        while b"\n" not in header:
            piece = feed.read(HEADER_SAMPLE)
            if not piece or len(header) > 16 * HEADER_SAMPLE:
                break
            header += piece
            if max(header.count(d.encode()) for d in DELIMITERS) >= checks.MAX_COLUMNS:
                end = header.find(b"\n")
                line = header if end < 0 else header[:end]
                counts = max(line.count(d.encode()) for d in DELIMITERS)
                Limits(rows=0).check_columns(counts + 1 if end >= 0 else counts)
    return checks.csv_header(header)


def scan_feed(path: Path) -> pl.LazyFrame:
    """The file's rows, its columns renamed to the feed's field names (see
    :func:`canonical_names`)."""
    if not path.is_file():
        raise IngestError(f"{path}: no such file", path=str(path))
    try:
        if feed_format(path) == "csv":
            delimiter = csv_delimiter(_file_header(path))
            lf = pl.scan_csv(path, infer_schema=False, separator=delimiter)
        else:
            lf = pl.scan_parquet(path)
        columns = lf.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise IngestError(f"{path.name}: cannot be read: {exc}", path=str(path)) from exc
    Limits(rows=0).check_columns(len(columns))
    try:
        renamed = canonical_names(columns)
    except IngestError as exc:
        raise IngestError(f"{path.name}: {exc.message}", path=str(path)) from None
    return lf.select(pl.col(old).alias(new) for old, new in renamed.items())


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
                if self._inflate.eof:
                    # Members follow one another (``cat a.gz b.gz``); zeros may pad the end.
                    data = data.lstrip(b"\0")
                    if not data:
                        return
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                out = self._inflate.decompress(data, min(self.PIECE, self.limit - self.size + 1))
                self._take(out)
                data = self._inflate.unconsumed_tail or self._inflate.unused_data
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


def _json_names(data: bytes, lines: bool) -> dict[str, str]:
    """The body's keys that name a field, to the field; ``IngestError`` (422) naming a key
    that an object holds twice, or two keys that name one field. A body that is not valid
    JSON is left to the readers to explain."""
    keys: set[str] = set()

    def pairs_hook(pairs: list[tuple[str, object]]) -> None:
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            twice = next(name for name in names if names.count(name) > 1)
            raise IngestError(
                f"an object holds the key {twice!r} twice; each field may appear once per trade"
            )
        keys.update(names)

    def ignored(_: str) -> None:
        return None

    decoder = json.JSONDecoder(
        object_pairs_hook=pairs_hook,
        parse_float=ignored,
        parse_int=ignored,
        parse_constant=ignored,
    )
    try:
        for text in data.decode("utf-8").split("\n") if lines else [data.decode("utf-8")]:
            if text.strip():
                decoder.decode(text)
    except (ValueError, RecursionError):
        pass
    names: dict[str, str] = {}
    named: dict[str, str] = {}
    for key in sorted(keys):
        field = COLUMN_NAMES.get(key.strip().lower())
        if field is None:
            continue
        if field in named:
            raise IngestError(f"keys {named[field]!r} and {key!r} both name the field {field!r}")
        named[field] = key
        names[key] = field
    return names


def _json_frame(frame: pl.DataFrame, names: dict[str, str]) -> pl.DataFrame:
    """``frame`` with its columns named as fields, every field present."""
    present = {names[column]: pl.col(column) for column in frame.columns if column in names}
    return frame.select(
        present.get(name, pl.lit(None, pl.String)).alias(name) for name in TEXT_SCHEMA
    )


def _python_json_rows(rows: object, names: dict[str, str]) -> pl.DataFrame:
    """Rows parsed by Python's json (numbers and NaN/Infinity kept as their text)."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise IngestError("body must be a JSON array of objects (one per trade)")

    def text(value: object) -> str | None:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value, separators=(",", ":"))

    columns = {key: [text(r.get(key)) for r in rows] for key in names}
    frame = pl.DataFrame(columns, schema=dict.fromkeys(names, pl.String))
    return _json_frame(frame, names)


def _loads(text: str) -> object:
    return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)


def _read_json(data: bytes) -> pl.DataFrame:
    if not data.lstrip()[:1] == b"[":
        raise IngestError("body must be a JSON array of objects (one per trade)")
    names = _json_names(data, lines=False)
    try:
        schema = dict.fromkeys(names, pl.String) or TEXT_SCHEMA
        return _json_frame(pl.read_json(io.BytesIO(data), schema=schema), names)
    except pl.exceptions.PolarsError:
        pass  # NaN/Infinity tokens or numbers beyond float range: Python's parser keeps them
    try:
        return _python_json_rows(_loads(data.decode("utf-8")), names)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IngestError(f"body is not valid JSON: {exc}") from exc


def _read_ndjson(data: bytes) -> pl.DataFrame:
    names = _json_names(data, lines=True)
    try:
        schema = dict.fromkeys(names, pl.String) or TEXT_SCHEMA
        return _json_frame(pl.read_ndjson(io.BytesIO(data), schema=schema), names)
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
    return _python_json_rows(rows, names)


def csv_delimiter(header: bytes) -> str:
    """The delimiter of a CSV header: the one that splits it into the most known names,
    else the most frequent of ``,`` ``;`` and tab, else ``,``."""

    header = header[:HEADER_SAMPLE]

    def known(delimiter: str) -> int:
        names = header.decode("utf-8", "replace").split(delimiter)
        return sum(name.strip().strip('"').strip().lower() in COLUMN_NAMES for name in names)

    return max(DELIMITERS, key=lambda d: (known(d), header.count(d.encode()), d == ","))


def canonical_names(columns: list[str]) -> dict[str, str]:
    """The renaming of a body's columns to the feed's field names (case and aliases aside);
    ``IngestError`` (422) when a required field is missing (every field of a trade, or the
    trade id alone in a body with an ``action`` column) or named twice."""
    renamed: dict[str, str] = {}
    seen: dict[str, str] = {}
    unexpected = []
    for column in columns:
        field = COLUMN_NAMES.get(column.strip().lower())
        if field is None:
            unexpected.append(column)
            continue
        if field in seen:
            raise IngestError(
                f"columns {seen[field]!r} and {column!r} both name the field {field!r}"
            )
        seen[field] = column
        renamed[column] = field
    # A body of revisions (an ``action`` column) may cancel by trade id alone; its rows that
    # add or amend a trade are checked field by field.
    required = ("trade_id",) if "action" in seen else REQUIRED_FIELDS
    missing = [name for name in required if name not in seen]
    if missing:
        others = ", ".join(map(repr, unexpected[:20])) if unexpected else "none"
        raise IngestError(
            f"required columns missing: {', '.join(missing)}; unexpected columns: {others};"
            " columns are the documented field names or their aliases, in any case"
        )
    return renamed


def with_canonical_names(frame: pl.DataFrame) -> pl.DataFrame:
    renamed = canonical_names(frame.columns)
    return frame.select(pl.col(old).alias(new) for old, new in renamed.items())


def read_body(data: bytes, fmt: str, limits: Limits | None = None) -> pl.DataFrame:
    """A pushed body as a frame; ``IngestError`` (422) when it cannot be read at all, and
    ``PayloadTooLarge`` (413) when it is over ``limits``, before its rows are built."""
    try:
        if fmt == "json":
            if limits is not None:
                checks.check_json(data, limits)
            return _read_json(data)
        if fmt == "ndjson":
            if limits is not None:
                checks.check_ndjson(data, limits)
            return _read_ndjson(data)
        if fmt == "csv":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise IngestError(f"CSV body is not UTF-8: {exc}") from exc
            delimiter = csv_delimiter(checks.csv_header(data))
            if limits is not None:
                checks.check_csv(data, delimiter, limits)
            frame = pl.read_csv(io.BytesIO(data), infer_schema=False, separator=delimiter)
            return with_canonical_names(frame)
        if fmt == "parquet":
            if limits is not None:
                checks.check_parquet(data, limits)
            return with_canonical_names(pl.read_parquet(io.BytesIO(data)))
        if fmt == "arrow":
            if limits is not None:
                checks.check_arrow_stream(data, limits)
            return with_canonical_names(pl.read_ipc_stream(io.BytesIO(data)))
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, ValueError) as exc:
        raise IngestError(f"body cannot be read as {fmt}: {exc}") from exc
    raise IngestError(f"unknown format {fmt!r}")
