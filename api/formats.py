"""The formats researchers read: JSON, CSV, Parquet, Arrow IPC stream, each written frame by frame.

Every renderer takes an iterator of Polars frames and yields bytes as soon as a frame is
written, so an answer of any length streams in constant memory (Parquet row group by row
group, Arrow record batch by record batch).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
from collections.abc import Iterable, Iterator
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import BcpiError

Format = Literal["json", "csv", "parquet", "arrow", "ipc"]
"""``arrow`` is the Arrow IPC stream format, ``ipc`` the Arrow IPC file format (what
``pl.read_ipc`` and ``pyarrow.ipc.open_file`` read)."""

MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
    "ipc": "application/vnd.apache.arrow.file",
}
_ACCEPTED: dict[str, Format] = {
    "application/json": "json",
    "application/*": "json",
    "*/*": "json",
    "text/csv": "csv",
    "text/*": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.arrow.file": "ipc",
}
EXTENSIONS = {
    "json": "json",
    "csv": "csv",
    "parquet": "parquet",
    "arrow": "arrows",
    "ipc": "arrow",
}
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_START = r"^[=+\-@\t\r]"


class NotAcceptable(BcpiError):
    status_code = 406


def negotiate(requested: str | None, accept: str | None) -> Format:
    """``format=`` wins; otherwise the most preferred media type of ``Accept`` we can write."""
    if requested:
        return requested  # type: ignore[return-value]
    if not accept:
        return "json"
    offers = []
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            offers.append((-quality, position, media.lower()))
    for _, _, media in sorted(offers):
        if media in _ACCEPTED:
            return _ACCEPTED[media]
    raise NotAcceptable(
        f"none of the media types in Accept ({accept!r}) is available; "
        f"choose one of {', '.join(sorted(set(MEDIA_TYPES.values())))} or use format=",
        accept=accept,
    )


def safe_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells a spreadsheet would run as a formula with an apostrophe."""
    # Every character that starts a formula sorts before "A": a column whose least value
    # does not (status words, flags, codes) holds none, and is not scanned.
    text = [
        name
        for name, dtype in frame.schema.items()
        if dtype == pl.String and (least := frame[name].min()) is not None and least < "A"
    ]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


class _Drain(io.RawIOBase):
    """A write-only sink whose bytes are taken away as soon as they are written."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def arrow_schema(schema: dict[str, pl.DataType]) -> pa.Schema:
    return _arrow_schema(tuple(schema.items()))


@functools.lru_cache(maxsize=256)
def _arrow_schema(columns: tuple[tuple[str, pl.DataType], ...]) -> pa.Schema:
    return pl.DataFrame(schema=dict(columns)).to_arrow().schema


def schema_metadata(metadata: dict | None) -> dict[bytes, bytes] | None:
    """The series' metadata as Parquet/Arrow schema metadata: one key ``bcpi:<field>`` per
    field that has a value, the value as text (dates ISO 8601, numbers as JSON writes
    them); a field without a value has no key."""
    if not metadata:
        return None
    out = {}
    for name, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, dt.date | dt.datetime):
            text = value.isoformat()
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value)
        out[f"bcpi:{name}".encode()] = text.encode()
    return out


def _flag_lists(frame: pl.DataFrame) -> pl.DataFrame:
    """A value's ``flags``, stored space-separated, as the list JSON, Parquet and Arrow
    carry (CSV keeps the text)."""
    if frame.schema.get("flags") != pl.String:
        return frame
    if frame["flags"].null_count() == frame.height:  # the usual case: nothing flagged
        return frame.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("flags"))
    words = pl.col("flags").fill_null("").str.split(" ")
    return frame.with_columns(words.list.eval(pl.element().filter(pl.element() != "")))


def _json(frames: Iterable[pl.DataFrame], envelope: dict) -> Iterator[bytes]:
    head = json.dumps(envelope, ensure_ascii=False)
    assert head.endswith("}")
    buffer = (head[:-1] + ', "points": [').encode()
    first = True
    for frame in frames:
        if frame.is_empty():
            continue
        sink = io.BytesIO()
        _flag_lists(frame).write_json(sink)
        body = sink.getbuffer()[1:-1]  # the points without the array's brackets
        yield buffer + (b"" if first else b",") + body
        first = False
        buffer = b""
    yield buffer + b"]}"


def _csv(frames: Iterable[pl.DataFrame], schema: dict[str, pl.DataType]) -> Iterator[bytes]:
    options = {"datetime_format": "%Y-%m-%dT%H:%M:%S%.6f%:z", "date_format": "%Y-%m-%d"}
    header = True
    for frame in frames:
        if frame.is_empty():
            continue
        yield safe_text(frame).write_csv(include_header=header, **options).encode()
        header = False
    if header:
        yield pl.DataFrame(schema=schema).write_csv(include_header=True).encode()


def _tables(
    frames: Iterable[pl.DataFrame],
    schema: dict[str, pl.DataType],
    open_writer,
    metadata: dict | None = None,
):
    """Each frame written as an Arrow table by the writer ``open_writer(sink, schema)``
    opens, the bytes yielded as they are made; ``metadata`` goes into the schema."""
    if schema.get("flags") == pl.String:
        schema = {**schema, "flags": pl.List(pl.String)}
    target = arrow_schema(schema)
    cast_to = target
    if metadata:
        target = target.with_metadata(schema_metadata(metadata))
    sink = _Drain()
    with open_writer(sink, target) as writer:
        yield sink.take()
        for frame in frames:
            if frame.is_empty():
                continue
            writer.write_table(
                _flag_lists(frame).to_arrow().cast(cast_to).replace_schema_metadata(target.metadata)
            )
            yield sink.take()
    yield sink.take()


def _arrow(
    frames: Iterable[pl.DataFrame], schema: dict[str, pl.DataType], metadata: dict | None = None
) -> Iterator[bytes]:
    return _tables(frames, schema, pa.ipc.new_stream, metadata)


def _parquet(
    frames: Iterable[pl.DataFrame], schema: dict[str, pl.DataType], metadata: dict | None = None
) -> Iterator[bytes]:
    return _tables(
        frames,
        schema,
        lambda sink, target: pq.ParquetWriter(
            sink, target, compression="zstd", use_dictionary=_text_columns(target)
        ),
        metadata,
    )


def _text_columns(target: pa.Schema) -> list[str]:
    """Columns worth a dictionary: text, whose few values repeat (dates and prices do not)."""
    return [
        f.name for f in target if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]


def render(
    fmt: Format,
    frames: Iterable[pl.DataFrame],
    schema: dict[str, pl.DataType],
    envelope: dict,
    *,
    metadata: dict | None = None,
) -> Iterator[bytes]:
    """The answer's bytes, chunk by chunk; JSON wraps the points in ``envelope``.

    ``metadata`` (a flat dict of JSON-able values: code, names, unit, …) goes into the
    schema of Parquet and Arrow answers (:func:`schema_metadata`); JSON carries whatever
    ``envelope`` holds and CSV stays one header row and the points.
    """
    if fmt == "json":
        return _json(frames, envelope)
    if fmt == "csv":
        return _csv(frames, schema)
    if fmt == "arrow":
        return _arrow(frames, schema, metadata)
    if fmt == "ipc":
        return _tables(frames, schema, pa.ipc.new_file, metadata)
    return _parquet(frames, schema, metadata)
