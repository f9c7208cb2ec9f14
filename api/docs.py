"""The API documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served with
their assets from this server, so that they work on a machine without internet.

Swagger UI's files come from the ``swagger-ui-bundle-v2`` package, ReDoc's standalone
bundle is vendored in ``api/static/vendor/redoc`` (MIT, see its LICENSE); both are served
under ``/static`` (:mod:`api.routes.dashboard`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

SWAGGER_UI_DIR = Path(str(swagger_ui_path))
SWAGGER_UI_PREFIX = "vendor/swagger-ui/"
"""Where Swagger UI's files appear under ``/static``."""

SWAGGER_JS = f"/static/{SWAGGER_UI_PREFIX}swagger-ui-bundle.js"
SWAGGER_CSS = f"/static/{SWAGGER_UI_PREFIX}swagger-ui.css"
SWAGGER_FAVICON = f"/static/{SWAGGER_UI_PREFIX}favicon-32x32.png"
REDOC_JS = "/static/vendor/redoc/redoc.standalone.js"

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"

SAME_ORIGIN_ONLY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
    ]
)
"""The docs pages' Content-Security-Policy: the browser fetches nothing from another host
(ReDoc's footer asks for its logo from a CDN; offline it is simply not shown)."""


def _same_origin(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return page


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, its OAuth2 redirect and ``/redoc``; the app is built with
    ``docs_url=None, redoc_url=None`` so that FastAPI adds no CDN-based ones."""
    title = app.title

    async def swagger_ui(_request: Request) -> HTMLResponse:
        return _same_origin(
            get_swagger_ui_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title=f"{title} · API",
                swagger_js_url=SWAGGER_JS,
                swagger_css_url=SWAGGER_CSS,
                swagger_favicon_url=SWAGGER_FAVICON,
                oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            )
        )

    async def oauth2_redirect(_request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(_request: Request) -> HTMLResponse:
        return _same_origin(
            get_redoc_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title=f"{title} · ReDoc",
                redoc_js_url=REDOC_JS,
                redoc_favicon_url=SWAGGER_FAVICON,
                with_google_fonts=False,
            )
        )

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
