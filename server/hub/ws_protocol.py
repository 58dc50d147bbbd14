"""A WebSocket once its upgrade is answered: the socket is taken from aiohttp.

aiohttp answers the upgrade (handlers/realtime_ws.py); `hand_over` (handover.py) then
gives the socket to a `WebSocketProtocol` of ours and aiohttp forgets it. Left with
aiohttp, every open WebSocket would keep its request, its HTTP protocol and parser, its
WebSocketResponse and a task waiting in the handler under the middlewares (~15 KB per
connection, docs/SCALING.md). Here a connection is its transport, this protocol, aiohttp's
frame reader (C, the same parser and checks as before) and the hub's Connection and
Session; a task exists only while the client's messages are being handled.

Frames are handled as aiohttp's WebSocketResponse handled them: messages in order, one at a
time (a message waits while the one before it is handled), those read before the client
went included; a ping is answered at once (a client that does not read the pongs is a slow
consumer, socket_connection.py), a pong counts as a sign of life (server/hub/heartbeat.py);
a protocol error, an oversized message or invalid UTF-8 closes with the reader's code
(1002, 1009, 1007) and drops the socket (nothing it sends can be read any more); the
client's close is answered with 1000.
When more than INBOX_BYTES of messages wait to be handled, the socket is not read until
half of them are.
"""

from __future__ import annotations

import contextlib
import logging
import math
import struct
import time
from collections import deque
from typing import Any

from aiohttp import WSMsgType
from aiohttp._websocket.reader import WebSocketDataQueue  # PRIVATE-API aiohttp 3.14
from aiohttp.http_websocket import WebSocketError, WebSocketReader, WebSocketWriter

from server.hub.heartbeat import Heartbeat
from server.hub.protocol import Close
from server.hub.socket_protocol import SocketProtocol

log = logging.getLogger(__name__)

HANDLING = math.inf  # `seen` while a message is being handled (server/hub/heartbeat.py)
INBOX_BYTES = 1 << 17  # messages waiting to be handled, beyond which reading pauses
OVERHEAD = 128  # counted per waiting message (aiohttp's reader counts the same)
CLOSE_TIMEOUT = 2.0  # how long a close waits for the client's close before dropping it

TEXT, BINARY, CLOSE, PING, PONG = (
    WSMsgType.TEXT,
    WSMsgType.BINARY,
    WSMsgType.CLOSE,
    WSMsgType.PING,
    WSMsgType.PONG,
)


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """An unmasked control frame (a server's frames are not masked); payload <= 125 bytes."""
    return bytes((0x80 | opcode, len(payload))) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    return control_frame(CLOSE, struct.pack("!H", code) + close_reason(reason))


def close_reason(reason: str) -> bytes:
    """At most 120 bytes of UTF-8 (a control frame carries 125), never half a character."""
    return reason.encode()[:120].decode(errors="ignore").encode()


class Inbox(WebSocketDataQueue):
    """Where aiohttp's reader puts each message: straight to the protocol. The queue's own
    buffer is never used, so its constructor is not run (it would make a deque and a
    waiter's state per connection); its counters stay 0, so the reader never stalls."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: WebSocketProtocol) -> None:
        self.protocol = protocol

    def feed_data(self, data: Any, size: int) -> None:
        self.protocol.received(data, size)

    def set_exception(self, exc: BaseException, exc_cause: Any = None) -> None:
        self.protocol.received(exc, 0)

    def feed_eof(self) -> None:
        pass


class WebSocketProtocol(SocketProtocol):
    """One client's socket after the upgrade: frames in, through aiohttp's reader."""

    __slots__ = ("_close_sent", "_held", "_pending", "_reader", "_writer", "compress", "notakeover")

    def __init__(
        self,
        session: Any,
        max_message_size: int,
        compress: int = 0,
        notakeover: bool = False,
    ) -> None:
        super().__init__(session)
        self.compress = compress
        self.notakeover = notakeover
        self._reader: WebSocketReader | None = WebSocketReader(
            Inbox(self), max_message_size, compress=bool(compress), decode_text=True
        )
        self._pending: deque[Any] | None = None  # messages waiting to be handled
        self._held = 0  # their bytes
        self._writer: WebSocketWriter | None = None  # made for compressed messages only
        self._close_sent = False

    def ring(self) -> Heartbeat:
        return self.session.hub.heartbeat  # type: ignore[no-any-return]

    # -- from the transport ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._reader is not None:
            self._reader.feed_data(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        """The messages already read are still handled (a client may send and go at once);
        the session ends after them."""
        self._reader = None
        self._writer = None  # it refers to this protocol: no cycle left behind
        super().connection_lost(exc)

    # -- messages, from aiohttp's reader -------------------------------------------------------

    def received(self, message: Any, size: int) -> None:
        """A whole message (or the reader's error, which ends the connection in its turn)."""
        if self._close_sent:  # closing: only the client's close matters now
            if not isinstance(message, BaseException) and message[0] is CLOSE:
                self._drop()
            return
        if not isinstance(message, BaseException):
            kind = message[0]
            if kind is PONG:
                connection = self.session.connection
                if connection.seen != HANDLING:
                    connection.seen = time.monotonic()
                return
            if kind is PING:
                self.session.connection.write_now(control_frame(PONG, message[1]))
                return
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        pending.append((message, size + OVERHEAD))
        self._held += size + OVERHEAD
        if self._held > INBOX_BYTES and not self._reading_paused:
            self.pause_reading()
        if self._handler is None:
            self._handler = self._loop.create_task(self._handle())

    async def _handle(self) -> None:
        connection = self.session.connection
        try:
            while self._pending and not connection.closed:
                message, size = self._pending.popleft()
                self._held -= size
                if isinstance(message, BaseException):
                    self._failed(message)
                    break
                kind, data = message[0], message[1]
                if self._reading_paused and self._held <= INBOX_BYTES // 2:
                    self.resume_reading()
                connection.seen = HANDLING  # the heartbeat does not judge it meanwhile
                if kind is TEXT:
                    await self.session.receive_text(data)
                elif kind is BINARY:
                    await self.session.receive_binary(data)
                elif kind is CLOSE:
                    self._closed_by_client()
                connection.seen = time.monotonic()
        except Exception:
            # a bug of ours: say so to the client (1011), keep the process
            log.exception("WebSocket %s failed", connection.client_id)
            connection.close_soon(Close.INTERNAL, "internal error")
        finally:
            self._handler = None
        if connection.closed:
            self._end()

    def _failed(self, error: BaseException) -> None:
        """The reader refused what the client sent: close with its code (1002, 1007, 1009)."""
        code = Close.INTERNAL
        if isinstance(error, WebSocketError):
            with contextlib.suppress(ValueError):
                code = Close(error.code)
        self._reader = None  # it reads nothing more: the close does not wait for the client's
        self.session.connection.close_soon(code, "")

    def _closed_by_client(self) -> None:
        """The client closes: answer 1000, then the socket goes."""
        self.session.connection.closed = True
        self._write(close_frame(Close.NORMAL))
        self._close_sent = True
        self._drop()

    # -- to the client ---------------------------------------------------------------------------

    @property
    def writer(self) -> WebSocketWriter:
        """aiohttp's frame writer, for the messages compressed with permessage-deflate."""
        if self._writer is None:
            assert self.transport is not None
            self._writer = WebSocketWriter(
                self, self.transport, compress=self.compress, notakeover=self.notakeover
            )
        return self._writer

    async def close(self, code: int, reason: str = "") -> None:
        """The closing handshake: our close frame, then up to CLOSE_TIMEOUT for the client's
        before the socket is dropped. The session ends meanwhile."""
        if self._close_sent:
            return
        self._close_sent = True
        if self._writer is not None:  # it closes too: no compressed message after this
            with contextlib.suppress(ConnectionError):
                await self._writer.close(code, close_reason(reason))
        else:
            self._write(close_frame(code, reason))
        self._end()
        if self.transport is None:
            return
        if self._reader is None:  # after a frame the reader refused, nothing is read
            self._drop()
            return
        if self._reading_paused:  # the client's close must be read
            self.resume_reading()
        await self._drop_within(CLOSE_TIMEOUT)
