"""SDMX error messages: a refused query answers with the SDMX-REST status and an SDMX-JSON
error message naming the reason (SDMX-ML when the request accepts XML)."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from api.sdmx.xml import element, message_namespaces
from core.errors import BcpiError


class NoResults(BcpiError):
    """Nothing matches the query (an unknown flow, agency, version, key or no values)."""

    status_code = 404


class SdmxSyntaxError(BcpiError):
    """The query is not well formed: the message names the part and what is allowed."""

    status_code = 400


SDMX_CODES = {400: 140, 401: 110, 403: 110, 404: 100}
"""SDMX-REST error codes by HTTP status (any other status is its own code)."""
TITLES = {
    100: "No results found",
    110: "Unauthorized",
    140: "Syntax error",
    406: "Not acceptable",
    413: "Request entity too large",
    503: "Service unavailable",
}


def error_response(request: Request, exc: BcpiError) -> Response:
    status = 400 if exc.status_code == 422 else exc.status_code
    code = SDMX_CODES.get(status, status)
    message = exc.message
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if "xml" not in request.headers.get("accept", "").lower():
        # SDMX-JSON's error shape, and the {error, detail} of every other bcpi answer.
        title = TITLES.get(code, "Error")
        body = {
            "error": type(exc).__name__,
            "detail": message,
            "errors": [{"code": code, "title": title, "detail": message}],
        }
        return Response(
            json.dumps(body, ensure_ascii=False), status, headers, media_type="application/json"
        )
    v3 = request.url.path.startswith("/sdmx/v2/")
    text = element("com:Text", {"xml:lang": "en"}, text=message)
    body = element(
        "mes:Error",
        message_namespaces(v3),
        element("mes:ErrorMessage", {"code": str(code)}, text),
    )
    return Response(
        '<?xml version="1.0" encoding="UTF-8"?>\n' + body,
        status,
        headers,
        media_type="application/xml",
    )


class SdmxRoute(APIRoute):
    """A route whose refusals are SDMX error messages."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except BcpiError as exc:
                return error_response(request, exc)

        return route
