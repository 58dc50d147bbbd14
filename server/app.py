"""`create_app(settings)`: the whole application assembled, without doing any I/O.

Middlewares, outermost first: tracing -> request id -> metrics -> errors -> CORS preflight;
every response gets the edge headers (server/kernel/edge.py) and, for a page of an allowed
origin, the CORS headers (server/kernel/cors.py). Resources open in cleanup contexts
(server/resources.py); routes come from handlers/routes.py.
"""

from __future__ import annotations

from aiohttp import web

from handlers import signaling as signaling_handlers
from handlers.openapi import openapi_cache_key
from server import resources
from server.hub import session
from server.hub.protocol import message_types_key
from server.kernel import cors, edge, limits, spans
from server.kernel.errors import error_middleware
from server.kernel.metrics import Metrics, metrics_key, metrics_middleware
from server.kernel.origins import Origins
from server.kernel.settings import Settings, settings_key
from server.kernel.telemetry import configure_tracing, request_id_middleware

MAX_HEADER_SIZE = 16 * 1024
MAX_REQUEST_LINE = 8190  # aiohttp's default, stated: edge tells a long URL (414) by it


def create_app(settings: Settings) -> web.Application:
    from handlers import admin_live
    from handlers.routes import setup_routes

    if settings.tracing_active or (settings.TRACING_ENABLED and spans.installed()):
        # Instruments aiohttp once per process: every Application made afterwards gets the
        # tracing middleware as its outermost layer.
        configure_tracing(settings)
    # Requests the HTTP parser refuses get the JSON envelope too (process-wide, idempotent).
    edge.install()
    origins = Origins.parse(settings.CORS_ALLOWED_ORIGINS)
    app = web.Application(
        middlewares=[
            request_id_middleware,
            metrics_middleware,
            error_middleware,
            cors.preflight_middleware,  # inside errors: a refused preflight gets the envelope
        ],
        client_max_size=settings.MAX_REQUEST_BODY,
        # Headers up to 16 KB reach the app (an oversized token gets our 401 envelope); a
        # longer one is refused by the parser, answered 431 by edge.EdgeRequestHandler.
        # edge_cors: those answers carry `Access-Control-Allow-Origin: *` (they cannot know
        # the Origin; server/kernel/edge.py says why that is safe).
        handler_args={
            "max_field_size": MAX_HEADER_SIZE,
            "max_line_size": MAX_REQUEST_LINE,
            "edge_cors": bool(origins),
        },
    )
    app[settings_key] = settings
    app[limits.connection_cap_key] = limits.connection_cap(settings.MAX_CONNECTIONS)
    app[cors.policy_key] = cors.Policy(origins, settings.CORS_MAX_AGE)
    app[metrics_key] = Metrics()
    app[openapi_cache_key] = {}
    app.cleanup_ctx.extend(resources.CLEANUP_CONTEXTS)
    if settings.WEBSOCKET_ENABLED:
        app[message_types_key] = session.message_types()
        if settings.WEBRTC_ENABLED:
            signaling_handlers.register(app[message_types_key])
            app.cleanup_ctx.append(resources.webrtc)
    app.cleanup_ctx.append(admin_live.dashboard)  # after the hub's and WebRTC's
    app.on_response_prepare.append(edge.security_headers)
    app.on_response_prepare.append(cors.cors_headers)
    app.on_shutdown.append(resources.close_realtime_connections)
    setup_routes(app)
    return app
