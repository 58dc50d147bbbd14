"""GET /metrics in the Prometheus text format; behind `Authorization: Bearer <METRICS_TOKEN>`
when that setting is not empty."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handlers import openapi_streams
from handlers.openapi import endpoint
from server.kernel.errors import Unauthorized
from server.kernel.metrics import metrics_key
from server.kernel.settings import settings_key


def _bearer_matches(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant time, on bytes (compare_digest refuses non-ASCII str).
    expected = token.encode()
    presented = given.strip().encode(errors="surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented, expected)


@endpoint(**openapi_streams.METRICS)
async def metrics(request: web.Request) -> web.Response:
    token = request.app[settings_key].METRICS_TOKEN.get_secret_value()
    if token and not _bearer_matches(request, token):
        raise Unauthorized("a valid metrics token is required")
    body = generate_latest(request.app[metrics_key].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
