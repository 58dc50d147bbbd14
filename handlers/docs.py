"""GET /openapi.json, /docs (Swagger UI) and /redoc, with every asset served locally."""

from __future__ import annotations

from aiohttp import web

from handlers.http import json_response
from handlers.openapi import openapi_cache_key
from handlers.openapi_document import build_spec
from server.kernel.settings import settings_key

DESCRIPTION = (
    "REST, WebSocket, Server-Sent Events and WebRTC signaling with one authentication, "
    "and background work through a transactional outbox and RabbitMQ. "
    'Every error answers `{"error": {"code", "message", "details"?, "request_id"}}`.'
)

# The pages load nothing from other origins; styles are inline because both UIs inject them.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'"
)

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API docs</title>
<link rel="icon" href="/static/docs/favicon-32x32.png">
<link rel="stylesheet" href="/static/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/docs/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script></body></html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API reference</title>
<link rel="icon" href="/static/docs/favicon-32x32.png"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/static/docs/redoc.standalone.js"></script></body></html>
"""


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document, built once from the routes."""
    cache = request.app[openapi_cache_key]
    if "spec" not in cache:
        settings = request.app[settings_key]
        cache["spec"] = build_spec(request.app, title=settings.APP_NAME, description=DESCRIPTION)
    return json_response(cache["spec"])


def _page(template: str, request: web.Request) -> web.Response:
    title = request.app[settings_key].APP_NAME
    return web.Response(
        text=template.format(title=title),
        content_type="text/html",
        headers={"Content-Security-Policy": CSP},  # nosniff and the rest: server/kernel/edge.py
    )


async def swagger_ui(request: web.Request) -> web.Response:
    return _page(SWAGGER_PAGE, request)


async def redoc(request: web.Request) -> web.Response:
    return _page(REDOC_PAGE, request)
