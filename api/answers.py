"""Series answers as streamed responses in the negotiated format."""

from __future__ import annotations

import itertools

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from api.formats import EXTENSIONS, MEDIA_TYPES, negotiate, render
from api.params import SeriesQuery
from api.series import SeriesSpec, output_schema, run

EAGER_BYTES = 2**20
"""An answer that is complete within this many bytes is sent whole; a longer one streams."""

SERIES_FORMATS = {
    200: {
        "content": {
            "text/csv": {},
            "application/vnd.apache.parquet": {},
            "application/vnd.apache.arrow.stream": {},
        },
        "description": "The series: JSON (below), CSV, Parquet or an Arrow IPC stream",
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


def series_response(request: Request, code: str, spec: SeriesSpec, query: SeriesQuery) -> Response:
    """The series, whole if it is short, else streamed (the stream's own session lives as
    long as the stream does)."""
    fmt = negotiate(query.format, request.headers.get("accept"))
    sessions = request.app.state.read_sessions
    envelope = {
        "code": code,
        "frequency": spec.frequency,
        "transform": spec.transform,
        "as_of": spec.as_of.isoformat() if spec.as_of else None,
    }
    schema = output_schema(spec)

    def body():
        with sessions() as session:
            yield from render(fmt, run(session, spec), schema, envelope)

    filename = f"{code}-{spec.frequency}-{spec.transform}.{EXTENSIONS[fmt]}"
    headers = {"content-disposition": f'inline; filename="{filename}"'}
    chunks = body()
    head, size = [], 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > EAGER_BYTES:
            break
    else:
        return Response(b"".join(head), media_type=MEDIA_TYPES[fmt], headers=headers)
    return StreamingResponse(
        itertools.chain(head, chunks), media_type=MEDIA_TYPES[fmt], headers=headers
    )
