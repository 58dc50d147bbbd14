"""A WebSocket client. A flush writes the pre-built frames of its queue straight to the
transport in one call; when the client's unsent bytes exceed SEND_BUFFER_BYTES its messages
wait in the queue (and a slow consumer is closed by the queue's bound, connection.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from server.hub.connection import Connection, SessionConnection
from server.hub.delivery import Delivery
from server.hub.protocol import Close, encode
from server.hub.subscription import SubscribeResult
from server.kernel.principal import Principal
from server.kernel.settings import Settings


class WebSocketConnection(SessionConnection):
    kind = "ws"
    __slots__ = ("_draining", "compressed", "transport", "ws")

    def __init__(
        self,
        principal: Principal,
        settings: Settings,
        on_dirty: Callable[[Connection], None],
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
    ) -> None:
        super().__init__(principal, settings, on_dirty)
        self.ws = ws
        self.transport = transport
        self.compressed = bool(settings.WS_COMPRESSION)
        self._draining = False

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
        with contextlib.suppress(ConnectionError, RuntimeError):
            if delivery.binary:
                await self.ws.send_bytes(delivery.payload)
            else:
                await self.ws.send_str(delivery.payload.decode())

    def flush(self) -> None:
        self._dirty = False
        if self.closed or not self._queue:
            return
        transport = self.transport
        if transport.is_closing():
            self._queue.clear()
            return
        if transport.get_write_buffer_size() > self._buffer_limit:
            if not self._draining:
                self._draining = True
                self.spawn(self._drain())
            return
        data = b"".join(self._queue) if len(self._queue) > 1 else self._queue[0]
        self.sent += len(self._queue)
        self._queue.clear()
        transport.write(data)

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
            self.transport.write(b"".join(self._queue))
            self._queue.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()[:120]), 2)
