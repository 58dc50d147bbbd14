"""GET /metrics in the Prometheus text format; behind `Authorization: Bearer <METRICS_TOKEN>`
when that setting is not empty."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from handlers import openapi_streams
from handlers.openapi import endpoint
from server.kernel.errors import Unauthorized
from server.kernel.metrics import bearer_matches, metrics_key
from server.kernel.settings import settings_key


@endpoint(**openapi_streams.METRICS)
async def metrics(request: web.Request) -> web.Response:
    token = request.app[settings_key].METRICS_TOKEN.get_secret_value()
    if token and not bearer_matches(request.headers.get("Authorization", ""), token):
        raise Unauthorized("a valid metrics token is required")
    body = await request.app[metrics_key].scrape()
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
