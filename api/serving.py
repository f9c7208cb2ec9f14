"""Everything the publication API adds to the application: engines, middleware, routes."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI
from sqlalchemy import Engine

from api.auth import ReadKey
from api.conditional import ConditionalMiddleware
from api.guards import RefuseNulMiddleware
from api.ratelimit import RateLimitMiddleware
from api.routes import (
    assessments,
    bulk,
    calendar,
    catalogue,
    dashboard,
    formulas,
    governance,
    indices,
    publication,
    sdmx,
    stream,
)
from api.strict import install_strict
from core.settings import Settings
from store.db import read_engine_for, session_factory


def install_serving(app: FastAPI, settings: Settings, engine: Engine) -> None:
    read_engine = read_engine_for(
        settings.read_database_url or settings.database_url, settings.sqlite_busy_timeout_ms
    )
    app.state.read_engine = read_engine
    app.state.read_sessions = session_factory(read_engine)
    digest = hashlib.sha256(app.state.catalogue.model_dump_json().encode()).hexdigest()
    for router in (
        catalogue.router,
        calendar.router,
        indices.router,
        assessments.router,
        bulk.router,
        publication.router,
        stream.router,
        formulas.router,
        governance.router,
        sdmx.router,
    ):
        app.include_router(router, dependencies=[ReadKey])  # ?api_key= is a parameter of each
    app.include_router(dashboard.router)
    app.mount("/static", dashboard.static_files, name="static")
    # Added innermost first: a request meets the NUL check, the limiter, ETags, then the
    # check of its query parameters.
    install_strict(app)
    app.add_middleware(
        ConditionalMiddleware,
        engine=read_engine,
        catalogue_digest=digest,
        cache_bytes=settings.response_cache_mb * 2**20,
    )
    app.add_middleware(RateLimitMiddleware, engine=engine, settings=settings)
    app.add_middleware(RefuseNulMiddleware)
