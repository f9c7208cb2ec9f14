"""One place that turns errors into HTTP answers shaped ``{error, detail}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from api.auth import authenticate
from api.ratelimit import READ_PREFIXES
from core.errors import BcpiError, InvalidInput


def _answer(status: int, error: str, detail: object) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BcpiError)
    async def _domain(_request: Request, exc: BcpiError) -> JSONResponse:
        if isinstance(exc, InvalidInput):
            detail = [{"field": exc.field, "message": exc.reason}]
            return _answer(exc.status_code, type(exc).__name__, detail)
        return _answer(exc.status_code, type(exc).__name__, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        return _answer(422, "InvalidRequest", detail)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        return _answer(exc.status_code, "HTTPError", exc.detail)


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorAnswer(BaseModel):
    """Every error answer: its kind, and why (a message, the fields at fault, or a report)."""

    error: str
    detail: str | list[FieldProblem] | dict[str, Any]


ERROR_STATUSES = {
    400: "the request cannot be carried out as asked",
    401: "no API key, or an unknown or revoked one",
    403: "a valid key that may not do this",
    404: "no such resource",
    406: "no acceptable media type",
    409: "conflicts with an earlier request",
    413: "body or row count over the limit",
    415: "unsupported Content-Type or Content-Encoding",
    422: "invalid request: the field and the reason",
    429: "over the rate limit (see Retry-After)",
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def _needs_key(dependant) -> bool:
    return any(d.call is authenticate or _needs_key(d) for d in dependant.dependencies)


def _statuses(dependant, path: str) -> tuple[set[int], bool | None]:
    """Error statuses an operation can answer besides its own, and whether it needs a key
    (``None``: a key is optional)."""
    statuses = {422}  # every request: parameters, and the NUL guard on path and query
    needs_key = None if path.startswith(READ_PREFIXES) else False
    if path.startswith(READ_PREFIXES):
        statuses |= {401, 429}
    if dependant is not None and _needs_key(dependant):
        statuses |= {401, 403}
        needs_key = True
    if "{" in path:
        statuses.add(404)
    if path.startswith("/v1/"):
        statuses.add(400)  # an unknown query parameter (api.strict)
    return statuses, needs_key


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document tell the truth about errors: every 4xx an operation can
    answer, shaped ``{error, detail}`` (not FastAPI's default validation schema), and which
    operations need a key."""
    from fastapi.routing import iter_route_contexts

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        schemas.update(
            ErrorAnswer.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs")
        )
        schemas["ErrorAnswer"] = ErrorAnswer.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        document["components"]["securitySchemes"] = SECURITY_SCHEMES
        answer = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}
        dependants = {
            (context.path, method.lower()): getattr(context, "dependant", None)
            for context in iter_route_contexts(app.routes)
            for method in context.methods or ()
        }
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                statuses, needs_key = _statuses(dependants.get((path, method)), path)
                responses = operation.setdefault("responses", {})
                for status in statuses | {int(s) for s in responses if s.startswith("4")}:
                    entry = responses.setdefault(str(status), {})
                    entry.setdefault("description", ERROR_STATUSES.get(status, "error"))
                    entry["content"] = answer
                if needs_key is not False:
                    keys = [{"bearer": []}, {"apiKey": []}]
                    operation["security"] = keys if needs_key else [{}, *keys]
        app.openapi_schema = document
        return document

    app.openapi = openapi
