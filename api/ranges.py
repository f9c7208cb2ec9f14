"""Byte ranges of a complete answer (RFC 9110 §14), as URL readers ask for them.

Polars (object_store), fsspec and ``curl -r`` read a file over HTTP in pieces: ``HEAD`` for
the size, then ``Range: bytes=-N`` for a Parquet footer and ``bytes=a-b`` for what it
points at. One range is answered ``206 Partial Content`` with ``Content-Range``; a last
position past the end is cut to the size, a suffix longer than the answer gives all of it,
and a range starting at or past the end is ``416`` with ``Content-Range: bytes */size``.
A request for several ranges is answered whole (``200``), as §14.2 allows a server to do;
so is a ``Range`` that is not well formed, or in another unit than bytes.

``If-Range`` holds only for the answer's own (strong) entity tag. A date in ``If-Range`` is
never taken as matching: ``Last-Modified`` has a resolution of one second, so it is a weak
validator here, and the whole answer is sent instead of a part of another one.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from typing import IO

from starlette.types import Send

READ_CHUNK = 2**20
_RANGE = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


class Unsatisfiable(Exception):
    """No byte of the answer is in the range asked for."""


def http_date(moment: dt.datetime) -> str:
    """An IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return email.utils.format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte (inclusive) that ``Range`` asks for of ``size`` bytes, or
    ``None`` when the whole answer is to be sent; raises :class:`Unsatisfiable`."""
    if not header:
        return None
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    spec = [part for part in specs.split(",") if part.strip()]
    if len(spec) != 1:
        return None
    match = _RANGE.fullmatch(spec[0])
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    end = size - 1 if last == "" else int(last)
    if last != "" and end < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)


def if_range_holds(if_range: str | None, tag: str) -> bool:
    """Whether a ``Range`` may be honoured under ``If-Range`` (strong comparison)."""
    if if_range is None:
        return True
    candidate = if_range.strip()
    return not tag.startswith("W/") and candidate == tag


class Body:
    """A complete answer held in memory or in a (spooled) file."""

    def __init__(self, content: bytes | IO[bytes], size: int) -> None:
        self.content = content
        self.size = size

    def chunks(self, start: int, end: int):
        """The bytes ``start`` to ``end`` inclusive, in pieces of at most ``READ_CHUNK``."""
        if isinstance(self.content, bytes):
            view = memoryview(self.content)
            for at in range(start, end + 1, READ_CHUNK):
                yield bytes(view[at : min(at + READ_CHUNK, end + 1)])
            return
        self.content.seek(start)
        left = end + 1 - start
        while left > 0:
            piece = self.content.read(min(READ_CHUNK, left))
            if not piece:
                break
            left -= len(piece)
            yield piece


def _unsatisfiable(range_header: str, size: int) -> str:
    if size == 0:
        return f"Range {range_header!r}: this answer is empty; ask for it without Range"
    return (
        f"Range {range_header!r} holds no byte of this {size}-byte answer: ask for "
        f"bytes=FIRST-LAST with FIRST from 0 to {size - 1}, or a suffix bytes=-N with N ≥ 1"
    )


def _replaced(headers: list, **values: str) -> list:
    names = {name.replace("_", "-").encode() for name in values}
    kept = [(k, v) for k, v in headers if k.lower() not in names]
    return kept + [(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()]


async def send_answer(
    send: Send, headers: list, body: Body, range_header: str | None, *, head: bool
) -> None:
    """The complete answer ``body`` (its start headers ``headers``), whole or the part
    ``range_header`` asks for; only headers for ``HEAD``."""
    try:
        wanted = None if head else requested_range(range_header, body.size)
    except Unsatisfiable:
        detail = json.dumps(
            {
                "error": "RangeNotSatisfiable",
                "detail": _unsatisfiable(range_header or "", body.size),
            }
        ).encode()
        start = _replaced(
            [(k, v) for k, v in headers if k.lower() != b"content-disposition"],
            content_type="application/json",
            content_length=str(len(detail)),
            content_range=f"bytes */{body.size}",
        )
        await send({"type": "http.response.start", "status": 416, "headers": start})
        await send({"type": "http.response.body", "body": detail})
        return
    first, last = (0, body.size - 1) if wanted is None else wanted
    status = 200 if wanted is None else 206
    values = {"content_length": str(last - first + 1 if body.size else 0)}
    if wanted is not None:
        values["content_range"] = f"bytes {first}-{last}/{body.size}"
    await send(
        {"type": "http.response.start", "status": status, "headers": _replaced(headers, **values)}
    )
    if head or body.size == 0:
        await send({"type": "http.response.body", "body": b""})
        return
    pieces = body.chunks(first, last)
    piece = next(pieces, b"")
    for following in pieces:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        piece = following
    await send({"type": "http.response.body", "body": piece})
