"""Limits on a pushed body, checked before its rows are built.

Each check reads only what it must: Arrow IPC message headers (row counts, buffer sizes),
Parquet footers, and a count of rows or objects in text bodies that stops one past the
limit. Over a limit is :class:`PayloadTooLarge` (413) naming the limit and what was seen.
"""

from __future__ import annotations

import csv
import io
import re
import struct
from dataclasses import dataclass

from core.errors import IngestError, PayloadTooLarge

MAX_COLUMNS = 256
"""Most columns in a pushed body or a feed file (the feed has 21 with `exchange`)."""


@dataclass(frozen=True)
class Limits:
    rows: int
    columns: int = MAX_COLUMNS
    decoded_bytes: int = 32 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings) -> Limits:
        return cls(rows=settings.rows_per_batch, decoded_bytes=settings.max_body_bytes)

    def check_rows(self, seen: int, exact: bool = True) -> None:
        """``exact`` when ``seen`` is the body's count, not where counting stopped."""
        if seen > self.rows:
            what = f"{seen} rows" if exact else f"at least {seen} rows"
            raise PayloadTooLarge(
                f"{what} exceed the limit of {self.rows} rows per batch (BCPI_ROWS_PER_BATCH)"
            )

    def check_columns(self, seen: int) -> None:
        if seen > self.columns:
            raise PayloadTooLarge(f"{seen} columns exceed the limit of {self.columns} columns")

    def check_decoded(self, seen: int) -> None:
        if seen > self.decoded_bytes:
            raise PayloadTooLarge(
                f"decoded body of at least {seen} bytes exceeds the limit of"
                f" {self.decoded_bytes} bytes (BCPI_MAX_BODY_BYTES)"
            )


# Text bodies ---------------------------------------------------------------------------

_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]', re.S)
_LINE = re.compile(rb"^[ \t\r]*\S", re.M)


def check_json(data: bytes, limits: Limits) -> None:
    """The objects of a JSON array, counted until one past the limit."""
    if data.count(b"{") <= limits.rows:
        return
    depth = rows = 0
    for match in _JSON_TOKEN.finditer(data):
        token = match.group()
        if token in (b"{", b"["):
            if depth == 1 and token == b"{":
                rows += 1
                if rows > limits.rows:
                    limits.check_rows(rows, exact=False)
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1


def check_ndjson(data: bytes, limits: Limits) -> None:
    """The non-blank lines of an NDJSON body, counted until one past the limit."""
    if data.count(b"\n") < limits.rows:
        return
    for rows, _ in enumerate(_LINE.finditer(data), start=1):
        if rows > limits.rows:
            limits.check_rows(rows, exact=False)


def _without_quoted(line: bytes) -> bytes:
    return re.sub(rb'"[^"]*"', b"", line)


def csv_header(data: bytes) -> bytes:
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def check_csv(data: bytes, delimiter: str, limits: Limits) -> None:
    """The header's columns, then the records, counted until one past the limit."""
    header = _without_quoted(csv_header(data))
    limits.check_columns(header.count(delimiter.encode()) + 1)
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if lines - 1 <= limits.rows:
        return
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")
    records = csv.reader(text, delimiter=delimiter)
    csv.field_size_limit(max(limits.decoded_bytes, 131072))
    try:
        next(records, None)
        for rows, _ in enumerate(records, start=1):
            if rows > limits.rows:
                limits.check_rows(rows, exact=False)
    except csv.Error as exc:
        raise IngestError(f"body cannot be read as csv: {exc}") from exc


# Parquet ------------------------------------------------------------------------------


def check_parquet(data: bytes, limits: Limits) -> None:
    """Rows, columns and uncompressed size from the footer, before any page is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise IngestError(f"body cannot be read as parquet: {exc}") from exc
    limits.check_columns(meta.num_columns)
    limits.check_rows(meta.num_rows)
    size = 0
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for column in range(row_group.num_columns):
            size += max(row_group.column(column).total_uncompressed_size, 0)
        limits.check_decoded(size)


# Arrow IPC stream ---------------------------------------------------------------------
# The stream is a sequence of messages: a 0xFFFFFFFF continuation marker (absent in old
# streams), the metadata's length, the metadata (a flatbuffer ``Message``) and a body of
# ``bodyLength`` bytes. Only the flatbuffer fields needed here are read.

_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3


class _Table:
    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        vtable = pos - _unpack("<i", buf, pos)
        self.vtable = vtable
        self.vsize = _unpack("<H", buf, vtable)

    def _field(self, index: int) -> int | None:
        entry = 4 + 2 * index
        if entry >= self.vsize:
            return None
        offset = _unpack("<H", self.buf, self.vtable + entry)
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        return default if at is None else _unpack(fmt, self.buf, at)

    def table(self, index: int) -> _Table | None:
        at = self._field(index)
        return None if at is None else _Table(self.buf, at + _unpack("<I", self.buf, at))

    def vector(self, index: int) -> tuple[int, int]:
        """The start and the length of a vector field (0, 0 when absent)."""
        at = self._field(index)
        if at is None:
            return 0, 0
        start = at + _unpack("<I", self.buf, at)
        return start + 4, _unpack("<I", self.buf, start)


def _unpack(fmt: str, buf: bytes, at: int) -> int:
    if at < 0:
        raise IngestError("body cannot be read as arrow: malformed message")
    try:
        return struct.unpack_from(fmt, buf, at)[0]
    except struct.error:
        raise IngestError("body cannot be read as arrow: malformed message") from None


def _batch_sizes(batch: _Table, body: memoryview) -> tuple[int, int]:
    """A record batch's rows and the bytes its buffers decode to."""
    rows = batch.scalar(0, "<q")
    compressed = batch.table(3) is not None
    start, count = batch.vector(2)
    decoded = 0
    for i in range(count):
        offset = _unpack("<q", batch.buf, start + 16 * i)
        length = _unpack("<q", batch.buf, start + 16 * i + 8)
        if length < 0 or offset < 0 or offset + length > len(body):
            raise IngestError("body cannot be read as arrow: a buffer lies outside its body")
        if compressed and length >= 8:
            size = _unpack("<q", body, offset)
            decoded += length - 8 if size == -1 else size
        else:
            decoded += length
    return rows, decoded


def check_arrow_stream(data: bytes, limits: Limits) -> None:
    """Rows, columns and decoded size of every message, read from the message headers."""
    view = memoryview(data)
    at = rows = decoded = 0
    while at + 4 <= len(data):
        size = _unpack("<I", data, at)
        at += 4
        if size == 0xFFFFFFFF:
            if at + 4 > len(data):
                break
            size = _unpack("<I", data, at)
            at += 4
        if size == 0:
            break
        if size > len(data) - at:
            raise IngestError("body cannot be read as arrow: a message runs past the body")
        meta = bytes(view[at : at + size])
        at += size
        message = _Table(meta, _unpack("<I", meta, 0))
        kind = message.scalar(1, "<B")
        body_length = message.scalar(3, "<q")
        if body_length < 0 or body_length > len(data) - at:
            raise IngestError("body cannot be read as arrow: a message body runs past the body")
        body = view[at : at + body_length]
        at += body_length
        header = message.table(2)
        if header is None:
            continue
        if kind == _SCHEMA:
            limits.check_columns(header.vector(1)[1])
        elif kind in (_RECORD_BATCH, _DICTIONARY_BATCH):
            batch = header if kind == _RECORD_BATCH else header.table(1)
            if batch is None:
                continue
            batch_rows, batch_bytes = _batch_sizes(batch, body)
            if kind == _RECORD_BATCH:
                rows += batch_rows
                limits.check_rows(rows, exact=False)
            else:
                limits.check_rows(batch_rows, exact=False)
            decoded += batch_bytes
            limits.check_decoded(decoded)
