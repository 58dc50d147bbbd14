"""A WebSocket client, over its socket (ws_protocol.py). A flush writes the pre-built frames
of its queue straight to the transport in one call; when the client's unsent bytes exceed
SEND_BUFFER_BYTES its messages wait in the queue. A slow consumer is closed by the queue's
bounds (connection.py): what the socket's buffer holds counts towards SEND_QUEUE_BYTES, read
once per flush."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType

from server.hub.connection import Connection, SessionConnection
from server.hub.delivery import Delivery
from server.hub.protocol import Close, encode
from server.hub.subscription import SubscribeResult
from server.hub.ws_protocol import WebSocketProtocol
from server.kernel.principal import Principal
from server.kernel.settings import Settings

PING = b"\x89\x00"  # a server's ping frame, empty (unmasked: servers do not mask)


class WebSocketConnection(SessionConnection):
    kind = "ws"
    __slots__ = ("_draining", "beat", "compressed", "pinged", "seen", "socket", "transport")

    def __init__(
        self,
        principal: Principal,
        settings: Settings,
        on_dirty: Callable[[Connection], None],
        transport: asyncio.Transport,
        compressed: bool = False,
    ) -> None:
        super().__init__(principal, settings, on_dirty)
        self.socket: WebSocketProtocol | None = None  # set when the socket is handed over
        self.transport = transport
        self.compressed = compressed  # permessage-deflate was agreed on
        self._draining = False
        # For the node's heartbeat (heartbeat.py): the socket sets `seen` on every message.
        self.seen = time.monotonic()
        self.pinged = 0.0
        self.beat = 0

    def ping(self, now: float) -> None:
        """A ping, written now, between whole frames (control frames may go anywhere
        between frames): a queue held for a slow reader does not delay it."""
        self.pinged = now
        if not self.transport.is_closing():
            self.transport.write(PING)

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
        if self.socket is None:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            opcode = WSMsgType.BINARY if delivery.binary else WSMsgType.TEXT
            await self.socket.writer.send_frame(delivery.payload, opcode)

    def flush(self) -> None:
        self._dirty = False
        if self.closed or not self._queue:
            return
        transport = self.transport
        if transport.is_closing():
            self._take_queue()
            return
        unsent = transport.get_write_buffer_size()  # what the client has not taken yet
        held = unsent > self._buffer_limit
        if held:
            unsent += self._queued_bytes  # the queue waits too
        if unsent > self._max_queue_bytes:
            if self.too_far_behind(unsent):
                return
        elif self._over_since:
            self._over_since = 0.0
        if held:
            if not self._draining:
                self._draining = True
                self.spawn(self._drain())
            return
        queue = self._take_queue()
        self.sent += len(queue)
        transport.write(b"".join(queue) if len(queue) > 1 else queue[0])

    async def _drain(self) -> None:
        """Wait (without blocking anyone) until the client has read enough, then flush."""
        try:
            while (
                not self.closed and self.transport.get_write_buffer_size() > self._buffer_limit // 2
            ):
                if self.transport.is_closing():
                    return
                await asyncio.sleep(0.005)
        finally:
            self._draining = False
        self.flush()

    async def _close(self, code: Close, reason: str) -> None:
        if self._queue and not self.transport.is_closing():
            self.transport.write(b"".join(self._take_queue()))
        if self.socket is not None:
            await self.socket.close(code, reason)
