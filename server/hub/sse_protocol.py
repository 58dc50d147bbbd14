"""An event stream's socket once the stream's head is sent (handover.py). Its client sends
nothing more (what it sends is ignored); its going ends the session. The stream's first
subscriptions run as the protocol's `_handler`, so the session ends only after them.
Keep-alive comments come from a ring of the hub (`hub.keepalive`, heartbeat.py), not from a
task per stream."""

from __future__ import annotations

import logging
import socket
from collections.abc import Coroutine
from typing import Any

from server.hub.heartbeat import Heartbeat
from server.hub.protocol import Close
from server.hub.socket_protocol import SocketProtocol

log = logging.getLogger(__name__)

END = b"0\r\n\r\n"  # the last chunk of a chunked body
CLOSE_TIMEOUT = 2.0  # how long the client has to read the stream's end before it is dropped
# A peer that stops acknowledging is dropped by the kernel after this long (milliseconds):
# a stream's only traffic may be a keep-alive comment every SSE_PING_INTERVAL.
SEND_TIMEOUT_MS = 120_000


class EventStreamProtocol(SocketProtocol):
    __slots__ = ()

    def ring(self) -> Heartbeat:
        return self.session.hub.keepalive  # type: ignore[no-any-return]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, SEND_TIMEOUT_MS)

    def data_received(self, data: bytes) -> None:
        pass  # an event stream's client has nothing to say after its request

    def start(self, subscribing: Coroutine[Any, Any, None]) -> None:
        """Run the stream's first subscriptions; the session ends after them."""
        self._handler = self._loop.create_task(self._run(subscribing))

    async def _run(self, subscribing: Coroutine[Any, Any, None]) -> None:
        connection = self.session.connection
        try:
            await subscribing
        except Exception:  # Redis gone meanwhile, or a bug of ours: the stream ends (1011)
            log.exception("event stream %s: subscribing failed", connection.client_id)
            connection.close_soon(
                Close.INTERNAL, "the channels could not be subscribed", drain=True
            )
        finally:
            self._handler = None
        if connection.closed:
            self._end()

    async def close(self, last: bytes) -> None:
        """Write `last` (the stream's last events, already chunked) and the body's end, then
        let the client read them for up to CLOSE_TIMEOUT. The session ends meanwhile."""
        self._write(last + END)
        self._end()
        self._drop()  # the transport sends what it holds, then closes
        await self._drop_within(CLOSE_TIMEOUT)
