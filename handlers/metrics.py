"""GET /metrics in the Prometheus text format."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.kernel.metrics import metrics_key


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[metrics_key].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
