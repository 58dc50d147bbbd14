"""GET /asyncapi.json: an AsyncAPI 3.0.0 document of what OpenAPI cannot say, built from
the same pydantic models the server validates and the frame models it is tested against.

    channel        address                    messages
    websocket      /realtime/ws               client messages (the app's MessageTypes), the
                                              replies to each, and what the server pushes
    events         /realtime/events           the event stream's events (name = SSE event)
    jobs.<c>       routing key <c>            each kind of concern <c> (workers/broker/kinds.py)
    queue.<c>      {AMQP_PREFIX}.<c>          the queue the worker consumes
    dead.<c>       {AMQP_PREFIX}.<c>.dead     its dead letters

Operations say what this system does: it receives client messages and sends frames and
events; the outbox relay sends jobs and the worker receives them. The document follows the
app's settings (surfaces enabled, AMQP prefix) and is built once per app, like /openapi.json.
tests/integration/test_asyncapi_document.py validates it against the official JSON Schema,
test_asyncapi_live.py live frames against it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers import asyncapi_amqp, asyncapi_realtime
from handlers.asyncapi_schemas import Components
from handlers.http import json_response
from handlers.openapi import openapi_cache_key
from server import __version__
from server.hub.protocol import message_types_key
from server.kernel.settings import Settings, settings_key
from workers.broker.topology import Topology

DESCRIPTION = (
    "The WebSocket frames (both directions), the Server-Sent Events and the RabbitMQ "
    "messages of the realtime server: what its OpenAPI document (/openapi.json) cannot "
    "describe. docs/PROTOCOL.md explains them in prose."
)
HOST_VARIABLE = {
    "description": "The host (and port) of the server, as in the URL this was fetched from.",
}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`Authorization: Bearer <access token>` (or an API key with the "
        "`realtime` scope), checked before the upgrade: 401 or 403 with the JSON error "
        "envelope.",
    },
    "apiKey": {
        "type": "httpApiKey",
        "name": "X-API-Key",
        "in": "header",
        "description": "An API key with the `realtime` scope.",
    },
    "ticket": {
        "type": "httpApiKey",
        "name": "ticket",
        "in": "query",
        "description": "Browsers: a single-use ticket (about 30 s) from POST /auth/ws-ticket.",
    },
    "broker": {
        "type": "userPassword",
        "description": "The RabbitMQ user of RABBITMQ_URL (server and worker only).",
    },
}


def _servers(settings: Settings) -> dict[str, Any]:
    realtime = [
        {"$ref": f"#/components/securitySchemes/{name}"} for name in ("bearer", "apiKey", "ticket")
    ]
    host = {"host": {**HOST_VARIABLE, "default": f"localhost:{settings.PORT}"}}
    return {
        "websocket": {
            "host": "{host}",
            "protocol": "ws",
            "description": "`wss` behind a proxy that terminates TLS.",
            "variables": host,
            "security": realtime,
        },
        "http": {
            "host": "{host}",
            "protocol": "http",
            "description": "Server-Sent Events (`https` behind a proxy that terminates TLS).",
            "variables": host,
            "security": realtime,
        },
        "rabbitmq": {
            "host": "{host}",
            "protocol": "amqp",
            "protocolVersion": "0.9.1",
            "description": "The broker between the server's outbox relay and the worker; "
            "clients never connect to it.",
            "variables": {"host": {"default": "localhost:5672"}},
            "security": [{"$ref": "#/components/securitySchemes/broker"}],
        },
    }


def build_asyncapi(app: web.Application, *, title: str) -> dict[str, Any]:
    settings = app[settings_key]
    components = Components()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    servers = _servers(settings)
    if settings.WEBSOCKET_ENABLED:
        channel, ops = asyncapi_realtime.websocket(
            components,
            app[message_types_key].models,
            {"$ref": "#/servers/websocket"},
            "/realtime/ws",
        )
        channels[asyncapi_realtime.WS] = channel
        operations.update(ops)
    else:
        del servers["websocket"]
    if settings.SSE_ENABLED:
        channel, ops = asyncapi_realtime.event_stream(
            components, {"$ref": "#/servers/http"}, "/realtime/events"
        )
        channels[asyncapi_realtime.SSE] = channel
        operations.update(ops)
    else:
        del servers["http"]
    amqp_channels, amqp_operations = asyncapi_amqp.channels(
        components, Topology.from_settings(settings), {"$ref": "#/servers/rabbitmq"}
    )
    channels.update(amqp_channels)
    operations.update(amqp_operations)
    schemas = components.render_schemas()
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": __version__, "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": dict(sorted(components.messages.items())),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


async def asyncapi_json(request: web.Request) -> web.Response:
    """The AsyncAPI 3.0.0 document, built once per app (kept next to /openapi.json's)."""
    cache = request.app[openapi_cache_key]
    if "asyncapi" not in cache:
        title = request.app[settings_key].APP_NAME
        cache["asyncapi"] = build_asyncapi(request.app, title=title)
    return json_response(cache["asyncapi"])
