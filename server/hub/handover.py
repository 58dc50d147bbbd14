"""What needs aiohttp's internals to take a client's socket from it: a WebSocket
handshake's answer, and handing the socket over to a protocol of ours (socket_protocol.py)
once a response's head is sent (a WebSocket's 101, an event stream's 200). aiohttp has no
API for either (a response keeps its socket until the handler returns, then ends it), so
they live here, pinned to aiohttp 3.14 (pyproject.toml) and held by
tests/integration/test_ws_protocol.py and test_sse_protocol.py."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from server.hub.socket_protocol import SocketProtocol


def handshake(request: web.Request, compress: bool) -> tuple[CIMultiDict[str], int, bool]:
    """The upgrade's answer (RFC 6455 4.2.2): its headers, and the permessage-deflate
    window and no-takeover flag agreed on (0: no compression). HTTPBadRequest when the
    request is no WebSocket handshake.

    PRIVATE-API aiohttp 3.14: WebSocketResponse._handshake, aiohttp's own checks and
    negotiation, without writing or taking anything."""
    headers, _, window, notakeover = web.WebSocketResponse(compress=compress)._handshake(request)
    return headers, window, notakeover


async def send_head(request: web.Request, response: web.StreamResponse) -> asyncio.Transport | None:
    """Send `response`'s head (a 101, an event stream's 200) at once, before the socket
    changes hands: its transport, or None when the client left meanwhile."""
    writer = await response.prepare(request)
    assert writer is not None
    await writer.drain()  # aiohttp holds a head back until the body's first write
    transport = request.transport
    if transport is None or transport.is_closing():
        return None
    return transport


def hand_over(request: web.Request, protocol: SocketProtocol) -> None:
    """Give the socket of a response whose head was sent to `protocol`; aiohttp forgets it.

    PRIVATE-API aiohttp 3.14: RequestHandler._message_tail holds what the client sent after
    its upgrade request (frames it did not wait to send); `connection_lost`, once its
    `transport` is None, is how the handler lets go of a socket: it leaves the server's
    books and stops its timers (tests/integration/test_ws_protocol.py)."""
    handler: Any = request.protocol
    transport = request.transport
    assert transport is not None
    tail, handler._message_tail = handler._message_tail, b""
    transport.set_protocol(protocol)
    handler.transport = None  # so that it neither writes nor closes it
    handler.connection_lost(None)
    protocol.connection_made(transport)
    with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError):
        transport.resume_reading()  # aiohttp pauses a socket whose tail grew large
    if tail:
        protocol.data_received(tail)
