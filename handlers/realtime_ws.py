"""WS /realtime/ws: authenticate (header, API key or single-use ticket), check Origin,
answer the upgrade, then hand the socket to the hub: from then on its frames go to the
client's Session (server/hub/ws_protocol.py) until the client or the server closes."""

from __future__ import annotations

from aiohttp import web

from handlers import openapi_streams
from handlers.http import origin_allowed
from handlers.openapi import endpoint
from server.auth.authenticator import authenticator_key
from server.hub.handover import hand_over, handshake, send_head
from server.hub.hub import hub_key
from server.hub.protocol import message_types_key
from server.hub.session import Session
from server.hub.ws_connection import WebSocketConnection
from server.hub.ws_protocol import WebSocketProtocol
from server.kernel.errors import Forbidden
from server.kernel.limits import connection_cap_key, refuse_when_full
from server.kernel.principal import Access, Principal
from server.kernel.settings import settings_key

REALTIME = Access(scope="realtime")


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
    credentials, 403 for a foreign Origin or an API key without the realtime scope, 400 for
    a request that is no WebSocket handshake. Once the upgrade is answered the socket is
    handed over to the hub (server/hub/handover.py, ws_protocol.py) and this handler returns."""
    settings = request.app[settings_key]
    principal = await authenticate(request)
    headers, compress, notakeover = handshake(request, settings.WS_COMPRESSION)
    response = web.StreamResponse(status=101, headers=headers)
    response.force_close()
    transport = await send_head(request, response)
    if transport is None:
        return response  # the client left meanwhile
    hub = request.app[hub_key]
    connection = WebSocketConnection(
        principal, settings, hub.flusher.mark_dirty, transport, compressed=bool(compress)
    )
    session = Session(request.app, connection, request.app[message_types_key])
    socket = WebSocketProtocol(session, settings.WS_MAX_MESSAGE_SIZE, compress, notakeover)
    connection.socket = socket
    session.start(node=hub.node_id)
    hub.heartbeat.add(connection)  # pinged when silent (server/hub/heartbeat.py)
    hand_over(request, socket)
    return response
