"""GET /realtime/events?channels=a,b: Server-Sent Events, EventSource-compatible.

The event id is the cursor (with several channels: `a=<cursor>,b=<cursor>`), so a client
that reconnects with Last-Event-ID (or `?since=`) gets what it missed from history, or a
final `recovery-failed` event when that is gone. Keep-alive comments every
SSE_PING_INTERVAL seconds; a `close` event says why the server ended the stream.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from handlers.realtime_ws import authenticate
from server.hub.connection import Delivery, SSEConnection
from server.hub.history import parse_cursor
from server.hub.hub import hub_key
from server.hub.protocol import encode
from server.kernel.errors import BadRequest, Forbidden
from server.kernel.realtime_errors import ProtocolError
from server.kernel.settings import settings_key

MAX_SSE_CHANNELS = 16


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


async def events(request: web.Request) -> web.StreamResponse:
    settings = request.app[settings_key]
    hub = request.app[hub_key]
    principal = await authenticate(request)
    names = [n for n in request.query.get("channels", "").split(",") if n]
    if not names or len(names) > MAX_SSE_CHANNELS or len(set(names)) != len(names):
        raise BadRequest(
            f"give 1-{MAX_SSE_CHANNELS} distinct channels: ?channels=a,b", code="bad_channels"
        )
    for name in names:  # refuse before the stream starts, with a proper HTTP status
        try:
            channel = hub.parse_channel(name)
            hub.check(hub.channels.check_subscribe, principal, channel)
        except ProtocolError as error:
            status = Forbidden if error.code == "forbidden" else BadRequest
            raise status(error.message, code=error.code) from None
    since = _since(request.headers.get("Last-Event-ID") or request.query.get("since", ""), names)

    response = EventSourceResponse(ping_interval=settings.SSE_PING_INTERVAL)
    await response.prepare(request)
    connection = SSEConnection(principal, settings, hub.mark_dirty, response)
    connection.composite = len(names) > 1
    connection.pending_since = dict(since)
    hub.register(connection)
    try:
        connection.send(
            encode(
                {
                    "type": "connected",
                    "client_id": connection.client_id,
                    "user_id": principal.user_id,
                    "server_time": int(time.time() * 1000),
                }
            ),
            event="connected",
        )
        for name in names:
            try:
                result = await hub.subscribe(connection, name, since.get(name))
            except ProtocolError as error:
                connection.send(
                    encode(
                        {
                            "type": "error",
                            "code": error.code,
                            "message": error.message,
                            "channel": name,
                        }
                    ),
                    event="error",
                )
                connection.close_soon(1011, error.message, drain=True)
                break
            if not result.recovered:
                connection.send(
                    encode(
                        {
                            "type": "recovery-failed",
                            "channel": name,
                            "cursor": result.position.cursor,
                        }
                    ),
                    event="recovery-failed",
                )
                connection.close_soon(
                    1000, "recovery failed: reload and subscribe again", drain=True
                )
                break
            subscription = result.subscription
            connection.pending_since.pop(name, None)
            for frame in result.frames:  # replay with each event's own id
                cursor = frame[frame.index(b'"cursor":"') + 10 :].split(b'"', 1)[0].decode()
                subscription.epoch, _, offset = cursor.partition(":")
                subscription.offset = int(offset)
                connection.deliver(Delivery(frame, event="publication", cursor=cursor))
            subscription.epoch, subscription.offset = result.position.epoch, result.position.offset
            # From here on the channel is live: say so, with the position as the event id.
            connection.deliver(
                Delivery(
                    encode(
                        {
                            "type": "subscribed",
                            "channel": name,
                            "cursor": result.position.cursor,
                            "recovered": True,
                        }
                    ),
                    event="subscribed",
                    cursor=result.position.cursor,
                )
            )
            hub.activate(connection, subscription)
        waits = [
            asyncio.ensure_future(connection.finished.wait()),
            asyncio.ensure_future(response.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
    finally:
        await hub.unregister(connection)
    return response
