"""GET /realtime/events?channels=a,b: Server-Sent Events, EventSource-compatible.

The event id is the cursor (with several channels: `a=<cursor>,b=<cursor>`), so a client
that reconnects with Last-Event-ID (or `?since=`) gets what it missed from history, or a
final `recovery-failed` event when that is gone. Keep-alive comments every
SSE_PING_INTERVAL seconds; a `close` event says why the server ended the stream. The
stream is a transport for the client's Session, like the WebSocket: once its head is sent
the socket is handed over to the hub (server/hub/handover.py, sse_protocol.py) and this
handler returns.
"""

from __future__ import annotations

from aiohttp import web

from handlers import openapi_streams
from handlers.openapi import endpoint
from handlers.realtime_ws import authenticate
from server.auth.subscription_tokens import by_channel
from server.hub.handover import hand_over, send_head
from server.hub.hub import Hub, hub_key
from server.hub.position import parse_cursor
from server.hub.session import Session
from server.hub.sse_connection import SSEConnection
from server.hub.sse_protocol import EventStreamProtocol
from server.kernel.errors import BadRequest, Forbidden
from server.kernel.principal import Principal
from server.kernel.realtime_errors import RealtimeError
from server.kernel.settings import settings_key

MAX_SSE_CHANNELS = 16
STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass events on at once
}


@endpoint(**openapi_streams.EVENTS)
async def events(request: web.Request) -> web.StreamResponse:
    settings = request.app[settings_key]
    hub = request.app[hub_key]
    principal = await authenticate(request)
    names = _channels(request.query.get("channels", ""))
    tokens = _tokens(request, names)
    # Refused before the stream starts, with a status.
    await _may_subscribe(hub, principal, names, tokens)
    since = _since(request.headers.get("Last-Event-ID") or request.query.get("since", ""), names)
    response = web.StreamResponse(headers=STREAM_HEADERS)
    response.enable_chunked_encoding()
    response.force_close()  # `Connection: close`: the socket ends with the stream
    transport = await send_head(request, response)
    if transport is None:
        return response  # the client left meanwhile
    connection = SSEConnection(
        principal,
        settings,
        hub.flusher.mark_dirty,
        transport,
        composite=len(names) > 1,
        since=since,
    )
    session = Session(request.app, connection)  # it sends no messages: no message types
    stream = EventStreamProtocol(session)
    connection.socket = stream
    hand_over(request, stream)
    hub.keepalive.add(connection)  # a comment every SSE_PING_INTERVAL (heartbeat.py)
    stream.start(_subscribe(session, connection, names, since, tokens))
    return response


async def _subscribe(
    session: Session,
    connection: SSEConnection,
    names: list[str],
    since: dict[str, str],
    tokens: dict[str, str],
) -> None:
    """Greet the client, then subscribe it channel by channel; a refusal or a failed
    recovery ends the stream."""
    session.start()
    for name in names:
        try:
            if not await session.subscribe(name, since.get(name), token=tokens.get(name)):
                return  # recovery failed: the stream ends
        except RealtimeError as error:
            connection.refuse(name, error)
            return


def _channels(query: str) -> list[str]:
    names = [name for name in query.split(",") if name]
    if not names or len(names) > MAX_SSE_CHANNELS or len(set(names)) != len(names):
        raise BadRequest(
            f"give 1-{MAX_SSE_CHANNELS} distinct channels: ?channels=a,b", code="bad_channels"
        )
    return names


def _tokens(request: web.Request, names: list[str]) -> dict[str, str]:
    """Subscription tokens, each naming its channel: `X-Subscription-Token` headers (a
    comma-separated list allowed) or `token` query parameters (short-lived tokens only:
    URLs are logged, redacted, but proxies may not)."""
    values = request.headers.getall("X-Subscription-Token", []) + request.query.getall("token", [])
    tokens = [token.strip() for value in values for token in value.split(",") if token.strip()]
    if len(tokens) > MAX_SSE_CHANNELS:
        raise BadRequest(f"at most {MAX_SSE_CHANNELS} subscription tokens", code="bad_token")
    found = by_channel(tokens)
    if len(found) != len(tokens) or set(found) - set(names):
        raise BadRequest(
            "each subscription token must be a JWT naming one of the channels (one each)",
            code="bad_token",
        )
    return found


async def _may_subscribe(
    hub: Hub, principal: Principal, names: list[str], tokens: dict[str, str]
) -> None:
    for name in names:
        try:
            channel = hub.parse_channel(name)
            await hub.subscriptions.check_subscribe(principal, channel, tokens.get(name))
        except RealtimeError as error:
            refused = error.code == "forbidden" or error.code.startswith("token_")
            status = Forbidden if refused else BadRequest
            raise status(error.message, code=error.code) from None


def _since(value: str, names: list[str]) -> dict[str, str]:
    """Last-Event-ID / since: one cursor (for one channel) or `channel=cursor,...`."""
    if not value:
        return {}
    if "=" not in value:
        if len(names) != 1 or parse_cursor(value) is None:
            raise BadRequest(
                "since/Last-Event-ID is not a cursor of these channels", code="bad_cursor"
            )
        return {names[0]: value}
    positions = {}
    for part in value.split(","):
        name, _, cursor = part.partition("=")
        if name not in names or parse_cursor(cursor) is None:
            raise BadRequest(
                f"since/Last-Event-ID names an unknown channel or a bad cursor: {part[:80]}",
                code="bad_cursor",
            )
        positions[name] = cursor
    return positions
