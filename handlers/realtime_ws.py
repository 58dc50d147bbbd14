"""WS /realtime/ws: authenticate (header, API key or single-use ticket), check Origin,
upgrade, then hand every frame to the client's Session until the client or the server
closes."""

from __future__ import annotations

import logging
import math
from time import monotonic

from aiohttp import WSMsgType, web

from handlers import openapi_streams
from handlers.http import origin_allowed
from handlers.openapi import endpoint
from server.auth.authenticator import authenticator_key
from server.hub.hub import hub_key
from server.hub.protocol import Close, message_types_key
from server.hub.session import Session
from server.hub.ws_connection import WebSocketConnection
from server.kernel.errors import Forbidden
from server.kernel.limits import connection_cap_key, refuse_when_full
from server.kernel.principal import Access, Principal
from server.kernel.settings import settings_key

REALTIME = Access(scope="realtime")
HANDLING = math.inf  # `seen` while a message is being handled (server/hub/heartbeat.py)
log = logging.getLogger(__name__)


async def authenticate(request: web.Request) -> Principal:
    """Who opens this WebSocket or event stream: Origin checked first (a foreign page is
    refused even with valid credentials), then the header, API key or single-use ticket.
    A process holding its MAX_CONNECTIONS refuses before all that (503 `server_full`)."""
    refuse_when_full(
        len(request.app[hub_key].registry.connections), request.app[connection_cap_key]
    )
    if not origin_allowed(request):
        raise Forbidden("this Origin may not connect", code="origin_not_allowed")
    return await request.app[authenticator_key].authenticate_connection(request, REALTIME)


@endpoint(**openapi_streams.WEBSOCKET)
async def websocket(request: web.Request) -> web.StreamResponse:
    """Refused before the upgrade with the JSON error envelope: 401 without valid
    credentials, 403 for a foreign Origin or an API key without the realtime scope."""
    settings = request.app[settings_key]
    principal = await authenticate(request)
    ws = web.WebSocketResponse(
        autoping=False,  # pings and pongs come here: the node's heartbeat sees the answers
        max_msg_size=settings.WS_MAX_MESSAGE_SIZE,
        compress=settings.WS_COMPRESSION,
    )
    await ws.prepare(request)
    transport = request.transport
    assert transport is not None
    hub = request.app[hub_key]
    connection = WebSocketConnection(principal, settings, hub.flusher.mark_dirty, ws, transport)
    session = Session(request.app, connection, request.app[message_types_key])
    session.start(node=hub.node_id)
    hub.heartbeat.add(connection)  # pinged when silent (server/hub/heartbeat.py)
    try:
        async for message in ws:
            # While its message is handled nothing else is read (a pong would wait): the
            # heartbeat leaves the client alone until then.
            connection.seen = HANDLING
            if message.type is WSMsgType.TEXT:
                await session.receive_text(message.data)
            elif message.type is WSMsgType.BINARY:
                await session.receive_binary(message.data)
            elif message.type is WSMsgType.PING:
                await ws.pong(message.data)
            connection.seen = monotonic()
            if connection.closed:
                break
    except Exception:
        # After the upgrade nothing may reach the HTTP error middleware (it would write an
        # HTTP response onto the socket): log, close (Close.INTERNAL), end normally.
        log.exception("WebSocket %s failed", connection.client_id)
        connection.close_soon(Close.INTERNAL, "internal error")
    finally:
        hub.heartbeat.remove(connection)
        await session.close()
    return ws
