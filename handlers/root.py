"""GET /: what this server is and which components are on."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from handlers.http import json_response
from handlers.openapi import endpoint
from server import __version__
from server.kernel.settings import settings_key


class AppInfo(BaseModel):
    name: str
    version: str
    environment: str
    components: dict[str, bool]
    docs: str | None
    openapi: str | None


@endpoint(summary="Application info", tags=["core"], response=AppInfo)
async def app_info(request: web.Request) -> web.Response:
    """Name, version, environment and the enabled components."""
    settings = request.app[settings_key]
    return json_response(
        AppInfo(
            name=settings.APP_NAME,
            version=__version__,
            environment=settings.ENVIRONMENT,
            components=settings.components(),
            docs="/docs" if settings.DOCS_ENABLED else None,
            openapi="/openapi.json" if settings.DOCS_ENABLED else None,
        )
    )
