"""A client's socket once aiohttp has let go of it (handover.py): what the WebSocket's
protocol (ws_protocol.py) and the event stream's (sse_protocol.py) share.

The client's session ends once, when the client goes or the server closes, and only after
what is being done for the client meanwhile (`_handler`: its messages, or an event
stream's first subscriptions). A close by the server waits a moment for the client to go,
then drops the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp.base_protocol import BaseProtocol

from server.hub.heartbeat import Heartbeat


class SocketProtocol(BaseProtocol):
    """`session` (session.py) drives the client; its connection writes to the transport.
    aiohttp's BaseProtocol brings the write flow control aiohttp's writers wait on."""

    __slots__ = ("_ended", "_gone", "_handler", "session")

    def __init__(self, session: Any) -> None:
        super().__init__(asyncio.get_running_loop())
        self._upgraded = True  # BaseProtocol pauses reading without an HTTP parser
        self.session = session
        self._handler: asyncio.Task[None] | None = None  # while something is done for it
        self._gone: asyncio.Future[None] | None = None  # a close waiting for the client
        self._ended = False

    def ring(self) -> Heartbeat:
        """The hub's ring that visits this client (pings, keep-alives)."""
        raise NotImplementedError

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost ends the session

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        self._end()

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def _drop_within(self, timeout: float) -> None:
        """Give the client `timeout` seconds to go (to answer a close, or to read what is
        left), then abort the socket: a peer that reads nothing does not hold it (and what
        it did not read) for the kernel's retransmission timeout."""
        if self.transport is None:
            return
        self._gone = self._loop.create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._gone), timeout)
        if self.transport is not None:
            self.transport.abort()

    def _end(self) -> None:
        """Once: the session leaves the hub, after what is being handled (if anything)."""
        if self._ended:
            return
        self._ended = True
        self.session.hub.ending(self._ending(self._handler))

    async def _ending(self, handler: asyncio.Task[None] | None) -> None:
        session = self.session
        connection = session.connection
        self.ring().remove(connection)
        try:
            if handler is not None and handler is not asyncio.current_task():
                await asyncio.wait([handler])
            await session.close()
        finally:
            connection.socket = None  # no cycle left for the garbage collector to find
