"""A client whose socket is ours (socket_protocol.py): the WebSocket's and the event
stream's. A flush writes the queue straight to the transport in one call (an event stream
frames it as one HTTP chunk); when the client's unsent bytes exceed SEND_BUFFER_BYTES its
messages wait in the queue. A slow consumer is closed by the queue's bounds
(connection.py): what the socket's buffer holds counts towards SEND_QUEUE_BYTES, read once
per flush. Both are visited by a ring of the hub (heartbeat.py): `seen`, `pinged`, `beat`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from server.hub.connection import Connection, SessionConnection
from server.kernel.principal import Principal
from server.kernel.settings import Settings

if TYPE_CHECKING:
    from server.hub.socket_protocol import SocketProtocol


class SocketConnection(SessionConnection):
    __slots__ = ("_draining", "beat", "pinged", "seen", "socket", "transport")

    def __init__(
        self,
        principal: Principal,
        settings: Settings,
        on_dirty: Callable[[Connection], None],
        transport: asyncio.Transport,
    ) -> None:
        super().__init__(principal, settings, on_dirty)
        self.socket: SocketProtocol | None = None  # set when the socket is handed over
        self.transport = transport
        self._draining = False
        self.seen = time.monotonic()
        self.pinged = 0.0
        self.beat = 0

    def write_now(self, data: bytes) -> None:
        """A control frame or comment (a ping, a pong, a keep-alive), written now between
        whole messages. A client that leaves them unread until more than SEND_QUEUE_BYTES
        wait in its socket's buffer (pinging without reading the pongs) is a slow consumer."""
        transport = self.transport
        if self.closed or transport.is_closing():
            return
        if transport.get_write_buffer_size() > self._max_queue_bytes:
            self.slow_consumer()
            return
        transport.write(data)

    def _framed(self, data: bytes) -> bytes:
        """What goes on the wire for `data` (the queue's bytes, joined)."""
        return data

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
        transport.write(self._framed(b"".join(queue) if len(queue) > 1 else queue[0]))

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
