"""The FastAPI application factory."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from api.auth import ReadKey
from api.docs import install_docs
from api.errors import document_errors, install_error_handlers
from api.routes import batches, feeds, trades, weights
from api.routes.ops import install_operations
from api.schemas import Health
from api.serving import install_serving
from core import __version__, faults
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.errors import BcpiError
from core.settings import Settings, get_settings
from store.bootstrap import prepare_database
from store.db import engine_for, session_factory


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or get_settings()
    catalogue = load_catalogue(settings.catalogue_path)
    engine = engine_for(settings.database_url, settings.sqlite_busy_timeout_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if migrate:
            try:
                prepare_database(engine, catalogue, calendar_file=settings.calendar_file)
            except BcpiError as exc:
                logging.getLogger("bcpi.api").error("cannot start: %s", exc.message)
                raise
        yield

    app = FastAPI(
        title="bcpi: Beijing bulk-commodity price indices",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    app.state.settings = settings
    app.state.catalogue = catalogue
    app.state.calendar = Calendar.from_settings(settings)
    app.state.sessions = session_factory(engine)
    install_error_handlers(app)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, _exc: ClientDisconnect) -> Response:
        # Nobody reads this answer; the request is over and nothing of it was stored.
        logging.getLogger("bcpi.api").info(
            "client disconnected during %s %s", request.method, request.url.path
        )
        return Response(status_code=400)

    @app.exception_handler(trades.TooManyUploads)
    async def _busy(_request: Request, exc: trades.TooManyUploads) -> JSONResponse:
        return JSONResponse(
            {"error": "TooManyUploads", "detail": exc.message},
            status_code=exc.status_code,
            headers={"Retry-After": str(exc.context["retry_after"])},
        )

    faults.install(app)  # test-only (BCPI_FAULT_PLAN); inert otherwise
    document_errors(app)

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz() -> Health:
        return Health(status="ok")

    install_serving(app, settings, engine)
    install_operations(app, settings)
    app.include_router(trades.router)
    app.include_router(feeds.router)
    app.include_router(batches.router)
    app.include_router(weights.router, dependencies=[ReadKey])
    return app


def create_worker_app() -> FastAPI:
    """The app of one ``bcpi serve --workers N`` worker: settings from the environment;
    the parent process has already migrated the database."""
    return create_app(get_settings(), migrate=False)
