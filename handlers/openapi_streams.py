"""What OpenAPI can say about the routes that are not request/response: the WebSocket upgrade,
the Server-Sent Events stream and the Prometheus metrics. Their handlers read their own
requests, so these are `@endpoint(validates=False, **...)` arguments; the frames and events
themselves are in the AsyncAPI document (/asyncapi.json)."""

from __future__ import annotations

from typing import Any

from handlers.http import JSON
from server.kernel.principal import Access

REALTIME = Access(scope="realtime")
ENVELOPE = {"content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
TICKET = {
    "name": "ticket",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "maxLength": 512},
    "description": "A single-use ticket (POST /auth/ws-ticket), for browsers that cannot "
    "send an Authorization header.",
}
ORIGIN = {
    "name": "Origin",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Sent by browsers; a foreign origin (not this server's, not in "
    "CORS_ALLOWED_ORIGINS) is refused with 403 `origin_not_allowed`.",
}

WEBSOCKET: dict[str, Any] = {
    "summary": "Open the realtime WebSocket",
    "tags": ["realtime"],
    "auth": REALTIME,
    "validates": False,
    "description": (
        "An HTTP/1.1 upgrade to a WebSocket (RFC 6455): send `Connection: Upgrade`, "
        "`Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`. "
        "Credentials and Origin are checked before the upgrade and refused with the JSON "
        "error envelope. The frames both ways are described in the AsyncAPI document at "
        "[/asyncapi.json](/asyncapi.json) (channel `websocket`) and in docs/PROTOCOL.md."
    ),
    "parameters": [TICKET, ORIGIN],
    "status": 101,
    "responses": {
        101: {
            "description": "Switching Protocols: the connection is now a WebSocket.",
            "headers": {
                "Upgrade": {"schema": {"type": "string", "const": "websocket"}},
                "Sec-WebSocket-Accept": {"schema": {"type": "string"}},
            },
        },
        400: {"description": "Not a WebSocket upgrade request", **ENVELOPE},
    },
}

EVENTS: dict[str, Any] = {
    "summary": "Subscribe to channels as Server-Sent Events",
    "tags": ["realtime"],
    "auth": REALTIME,
    "validates": False,
    "description": (
        "An endless `text/event-stream` (EventSource-compatible): each publication is an "
        "event whose `id` is its cursor; keep-alive comments every SSE_PING_INTERVAL "
        "seconds. Refusals (bad or forbidden channels, a bad cursor) come before the stream "
        "starts, with a status and the JSON error envelope. The events are described in the "
        "AsyncAPI document at [/asyncapi.json](/asyncapi.json) (channel `events`) and in "
        "docs/PROTOCOL.md."
    ),
    "parameters": [
        {
            "name": "channels",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            "description": "1-16 distinct channel names, comma-separated.",
        },
        {
            "name": "since",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "Resume after this cursor (one channel) or `channel=cursor,...`.",
        },
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "What EventSource sends on reconnecting; same as `since`.",
        },
        {
            "name": "X-Subscription-Token",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "Subscription tokens (JWTs, each naming one of the channels), "
            "comma-separated, for channels of namespaces that accept them.",
        },
        {
            "name": "token",
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": {"type": "string"}},
            "style": "form",
            "explode": True,
            "description": "Subscription tokens as query parameters (repeat it), for "
            "EventSource, which cannot send headers: short-lived tokens only (logs redact it).",
        },
        TICKET,
        ORIGIN,
    ],
    "responses": {
        200: {
            "description": "The event stream (it ends only when either side closes it).",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        400: {"description": "Bad channels, cursor or subscription token", **ENVELOPE},
        403: {
            "description": "A channel you may not subscribe to, or a subscription token "
            "refused (`token_expired`, `token_invalid`, ...)",
            **ENVELOPE,
        },
    },
}

METRICS: dict[str, Any] = {
    "summary": "Prometheus metrics",
    "tags": ["operations"],
    "validates": False,
    "description": (
        "The Prometheus text exposition format. When METRICS_TOKEN is set, send "
        "`Authorization: Bearer <METRICS_TOKEN>` (401 otherwise)."
    ),
    "responses": {
        200: {
            "description": "Metrics",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        401: {"description": "METRICS_TOKEN is set and was not sent", **ENVELOPE},
    },
}
