"""The dashboard page and the bundled assets under ``/static``: the dashboard's own files,
ECharts and ReDoc (vendored), Swagger UI (from its package). No network is needed."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from api.docs import SWAGGER_UI_DIR, SWAGGER_UI_PREFIX

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["dashboard"])


class StaticAssets(StaticFiles):
    """``api/static``, with Swagger UI's package directory under ``vendor/swagger-ui/``."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR)
        self.swagger_ui = StaticFiles(directory=SWAGGER_UI_DIR)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.startswith(SWAGGER_UI_PREFIX):
            return await self.swagger_ui.get_response(path.removeprefix(SWAGGER_UI_PREFIX), scope)
        return await super().get_response(path, scope)


static_files = StaticAssets()


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
