"""A WebSocket client, over its socket (ws_protocol.py): its queue holds pre-built frames,
written by the flush of socket_connection.py; pings for the node's heartbeat; compressed
messages through aiohttp's writer; the closing handshake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType

from server.hub.connection import Connection
from server.hub.delivery import Delivery
from server.hub.protocol import Close, encode
from server.hub.socket_connection import SocketConnection
from server.hub.subscription import SubscribeResult
from server.hub.ws_protocol import WebSocketProtocol
from server.kernel.principal import Principal
from server.kernel.settings import Settings

PING = b"\x89\x00"  # a server's ping frame, empty (unmasked: servers do not mask)


class WebSocketConnection(SocketConnection):
    kind = "ws"
    __slots__ = ("compressed",)
    socket: WebSocketProtocol | None

    def __init__(
        self,
        principal: Principal,
        settings: Settings,
        on_dirty: Callable[[Connection], None],
        transport: asyncio.Transport,
        compressed: bool = False,
    ) -> None:
        super().__init__(principal, settings, on_dirty, transport)
        self.compressed = compressed  # permessage-deflate was agreed on

    def ping(self, now: float) -> None:
        """A ping, written now, between whole frames (control frames may go anywhere
        between frames): a queue held for a slow reader does not delay it."""
        self.pinged = now
        self.write_now(PING)

    def unresponsive(self) -> None:
        """No answer to a ping in time: drop the socket without a close handshake (the
        client sees 1006); the handler ends and the hub forgets the connection."""
        if not self.closed:
            self.closed = True
            self.close_code = Close.ABNORMAL
            self._take_queue()
            self.transport.abort()

    def deliver(self, delivery: Delivery) -> None:
        if self.compressed:  # compressed frames need aiohttp's writer: one at a time
            if not self.closed:
                self.spawn(self._send_compressed(delivery))
            return
        self._enqueue(delivery.ws)

    def replay(self, result: SubscribeResult, reply_id: Any) -> bool:
        """One `subscribed` reply carries the missed publications; when they are beyond the
        history it says `recovered: false` and the channel goes live from now."""
        head = {
            "type": "subscribed",
            "channel": result.subscription.channel,
            "cursor": result.position.cursor,
            "recovered": result.recovered,
            "id": reply_id,
        }
        publications = b",".join(delivery.payload for delivery in result.replay)
        self.send(encode(head)[:-1] + b',"publications":[' + publications + b"]}")
        return True

    async def _send_compressed(self, delivery: Delivery) -> None:
        socket = self.socket
        if socket is None or socket.transport is None or self.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            opcode = WSMsgType.BINARY if delivery.binary else WSMsgType.TEXT
            await socket.writer.send_frame(delivery.payload, opcode)

    async def _close(self, code: Close, reason: str) -> None:
        if self._queue and not self.transport.is_closing():
            self.transport.write(b"".join(self._take_queue()))
        if self.socket is not None:
            await self.socket.close(code, reason)
