"""Checks on the raw request before any route sees it.

A NUL byte is accepted by SQLite and refused by PostgreSQL (which would answer with a
server error), so any NUL in the path or the query string is refused here with a 422 that
names the parameter.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Receive, Scope, Send


def _nul_field(scope: Scope) -> str | None:
    query = scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query.lower():
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return name.replace("\x00", "\\0") or "query"
        return "query"
    if "\x00" in scope.get("path", "") or "\x00" in unquote(scope.get("path", "")):
        return "path"
    return None


class RefuseNulMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        field = _nul_field(scope) if scope["type"] == "http" else None
        if field is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": "InvalidRequest",
                "detail": [{"field": field, "message": "must not contain a NUL byte"}],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 422,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
