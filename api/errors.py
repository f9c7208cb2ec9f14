"""One place that turns errors into HTTP answers shaped ``{error, detail}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from bcpi.errors import BcpiError

try:
    from index.errors import FormulaInputError
except ImportError:  # the researcher formulas are not installed
    FormulaInputError = None


def _answer(status: int, error: str, detail: object) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BcpiError)
    async def _domain(_request: Request, exc: BcpiError) -> JSONResponse:
        return _answer(exc.status_code, type(exc).__name__, exc.message)

    if FormulaInputError is not None:

        @app.exception_handler(FormulaInputError)
        async def _formula(_request: Request, exc) -> JSONResponse:
            detail = [{"field": exc.field, "message": exc.reason}]
            return _answer(422, "InvalidFormulaInput", detail)

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
