"""Series answers as streamed responses in the negotiated format, with their metadata."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Connection, Engine

from api.formats import EXTENSIONS, MEDIA_TYPES, NotAcceptable, negotiate, render
from api.params import SeriesQuery
from api.series import Kind, SeriesSpec, identify, output_schema, run
from core.errors import UnknownCommodity, UnknownIndex

EAGER_BYTES = 2**20
"""An answer that is complete within this many bytes is sent whole; a longer one streams."""

METADATA_FIELDS = (
    "code",
    "name_en",
    "name_zh",
    "unit",
    "currency",
    "base_date",
    "base_value",
    "methodology_version",
)
"""What describes a series wherever it goes: the JSON envelope, the Parquet/Arrow schema
metadata (``bcpi:<field>``) and the metadata URL a CSV answer links to."""

SERIES_FORMATS = {
    200: {
        "content": {
            "text/csv": {},
            "application/vnd.apache.parquet": {},
            "application/vnd.apache.arrow.stream": {},
            "application/vnd.apache.arrow.file": {},
        },
        "description": "The series: JSON (below), CSV, Parquet or an Arrow IPC stream. "
        "Parquet and Arrow carry the series' metadata as schema metadata (`bcpi:code`, "
        "`bcpi:name_en`, …); every answer links to it as JSON with "
        '`Link: <…/metadata?…>; rel="describedby"`.',
    },
    406: {"description": "No acceptable media type"},
}


def series_spec(kind, key_id: int, query: SeriesQuery) -> SeriesSpec:
    return SeriesSpec(
        kind=kind,
        key_id=key_id,
        start=query.start,
        end=query.end,
        frequency=query.frequency,
        transform=query.transform,
        as_of=query.as_of,
        order=query.order,
        limit=query.limit,
        rebase_to=query.rebase_to,
    )


def describe(connection: Connection, spec: SeriesSpec, code: str | None = None) -> dict:
    """The metadata of the answer ``spec`` asks for (of the index or commodity ``code``,
    when given, else of ``spec.key_id``), in :data:`METADATA_FIELDS` order, then what was
    asked (frequency, transform, as_of), and the ``id``.

    An index is in points (no currency), based at its base date's base value; a
    commodity's assessments are prices in its unit and currency, with no base.
    ``methodology_version`` is that of the newest value in the requested range as
    published at ``as_of`` (None without one).
    """
    found = identify(connection, spec, code=code)
    if found is None:
        missing = code if code is not None else str(spec.key_id)
        raise UnknownIndex(missing) if spec.kind == "index" else UnknownCommodity(missing)
    if spec.kind == "index":
        found["currency"] = None
        found["base_date"] = found.pop("started_on") or found["base_date"]
    else:
        found |= {"base_date": None, "base_value": None}
    out = {name: found[name] for name in METADATA_FIELDS}
    out |= {"frequency": spec.frequency, "transform": spec.transform, "as_of": spec.as_of}
    return out | {"id": found["id"]}


def jsonable(metadata: dict) -> dict:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in metadata.items()}


def metadata_link(request: Request) -> str:
    """The metadata URL of this series answer: same path ending ``/metadata``, same
    query less the format."""
    path = request.url.path.removesuffix("/series") + "/metadata"
    query = request.url.query
    if "format" in query:
        query = urlencode([(k, v) for k, v in parse_qsl(query, True) if k != "format"])
    return f'<{path}{"?" + query if query else ""}>; rel="describedby"'


def series_response(request: Request, code: str, spec: SeriesSpec, query: SeriesQuery) -> Response:
    """The index or commodity series ``spec`` (already resolved to its id) answered."""
    return answer(request, spec.kind, query, spec=spec)


def answer(
    request: Request,
    kind: Kind,
    query: SeriesQuery,
    *,
    code: str | None = None,
    spec: SeriesSpec | None = None,
) -> Response:
    """The series, whole if it is short, else streamed: one connection reads the
    description, the metadata and the points, and lives as long as the stream does."""
    fmt = negotiate(query.format, request.headers.get("accept"))
    engine = request.app.state.read_engine
    spec = spec or series_spec(kind, 0, query)
    described: dict = {}

    def body():
        nonlocal spec
        with read_snapshot(engine) as connection, connection.begin():
            described.update(describe(connection, spec, code))
            spec = replace(spec, key_id=described.pop("id"))
            yield b""  # the description is known: the headers can be written
            envelope = jsonable(described)
            yield from render(
                fmt, run(connection, spec), output_schema(spec), envelope, metadata=envelope
            )

    chunks = body()
    next(chunks)
    filename = f"{described['code']}-{spec.frequency}-{spec.transform}.{EXTENSIONS[fmt]}"
    headers = {
        "content-disposition": f'inline; filename="{filename}"',
        "link": metadata_link(request),
    }
    return whole_or_streamed(chunks, MEDIA_TYPES[fmt], headers)


def whole_or_streamed(chunks: Iterator[bytes], media_type: str, headers: dict) -> Response:
    """An answer sent whole when it is complete within :data:`EAGER_BYTES`, else streamed
    (what was read so far first)."""
    head, size = [], 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > EAGER_BYTES:
            break
    else:
        return Response(b"".join(head), media_type=media_type, headers=headers)
    return StreamingResponse(itertools.chain(head, chunks), media_type=media_type, headers=headers)


def read_snapshot(engine: Engine) -> Connection:
    """A read connection whose statements all see one snapshot (SQLite's read engine
    begins a deferred transaction, which already does; PostgreSQL needs repeatable read)."""
    connection = engine.connect()
    if connection.dialect.name == "postgresql":
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
    return connection


def metadata_answer(request: Request, kind: Kind, code: str, query: SeriesQuery) -> dict:
    """The metadata alone, for the JSON a CSV answer links to (JSON only: the series'
    query is taken whole, so a link can carry it; a format other than JSON is refused)."""
    if query.format not in (None, "json"):
        raise NotAcceptable(
            f"the metadata is JSON; format={query.format} is not offered here",
            field="format",
        )
    with request.app.state.read_engine.connect() as connection, connection.begin():
        described = describe(connection, series_spec(kind, 0, query), code)
    described.pop("id")
    return jsonable(described)
