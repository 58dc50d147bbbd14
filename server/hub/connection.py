"""One realtime client: its subscriptions, its bounded send queue and how it is written.

Fan-out never awaits a client. `deliver()` appends to the client's queue and marks it dirty;
the hub flushes every dirty client once per event-loop turn, so several messages that
arrived together go out in one write. A WebSocket flush writes pre-built frames straight to
the transport; when the client's unsent bytes exceed SEND_BUFFER_BYTES its messages wait in
the queue, and when the queue exceeds SEND_QUEUE_MESSAGES the client is a slow consumer and
is closed (4008) without delaying anyone else. SSE clients have one writer task each,
because a streamed HTTP response must be written through aiohttp (chunked encoding).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from server.hub import binary
from server.hub.protocol import Close, ws_frame
from server.kernel.principal import Principal
from server.kernel.settings import Settings

if TYPE_CHECKING:
    from aiohttp_sse import EventSourceResponse

log = logging.getLogger(__name__)

CLOSING = "connection-close"


class Delivery:
    """One outgoing message, encoded once and framed at most once per transport."""

    __slots__ = ("_sse", "_ws", "binary", "cursor", "event", "payload")

    def __init__(
        self, payload: bytes, *, event: str, cursor: str | None = None, binary: bool = False
    ) -> None:
        self.payload = payload
        self.event = event
        self.cursor = cursor
        self.binary = binary
        self._ws: bytes | None = None
        self._sse: bytes | None = None

    @property
    def ws(self) -> bytes:
        if self._ws is None:
            self._ws = ws_frame(self.payload, binary=self.binary)
        return self._ws

    @property
    def sse(self) -> bytes:
        """`event:` and `data:` lines (the `id:` line depends on the connection). SSE is
        text only: a binary message arrives as JSON with its bytes in base64."""
        if self._sse is None:
            payload = self.payload
            if self.binary:
                message = binary.parse(payload)
                assert isinstance(message, binary.BinaryMessage)
                payload = orjson.dumps(
                    {
                        "type": "binary",
                        **message.header,
                        "data_base64": base64.b64encode(message.data).decode(),
                    }
                )
            self._sse = b"event: " + self.event.encode() + b"\ndata: " + payload + b"\n\n"
        return self._sse


class Subscription:
    """A client's place in a channel: the last offset it was given (to drop duplicates
    and keep order) and, while its history is being recovered, the live messages held back."""

    __slots__ = ("buffer", "channel", "epoch", "offset")

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.epoch = ""
        self.offset = 0
        self.buffer: list[tuple[str, int, Delivery]] | None = []

    @property
    def cursor(self) -> str:
        return f"{self.epoch}:{self.offset}"


class Connection:
    kind = "?"
    __slots__ = (
        "_buffer_limit",
        "_dirty",
        "_max_queue",
        "_on_dirty",
        "_queue",
        "_tasks",
        "client_id",
        "close_code",
        "closed",
        "connected_at",
        "principal",
        "sent",
        "subscriptions",
    )

    def __init__(
        self, principal: Principal, settings: Settings, on_dirty: Callable[[Connection], None]
    ) -> None:
        self.client_id = uuid.uuid4().hex
        self.principal = principal
        self.subscriptions: dict[str, Subscription] = {}
        self.connected_at = time.time()
        self.sent = 0
        self.closed = False
        self.close_code: int | None = None
        self._queue: list[bytes] = []
        self._dirty = False
        self._on_dirty = on_dirty
        self._max_queue = settings.SEND_QUEUE_MESSAGES
        self._buffer_limit = settings.SEND_BUFFER_BYTES
        self._tasks: set[asyncio.Task[None]] | None = None  # made when first needed

    @property
    def user_id(self) -> int:
        return self.principal.user_id

    @property
    def queued(self) -> int:
        return len(self._queue)

    def info(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "user_id": self.user_id, "transport": self.kind}

    def _enqueue(self, data: bytes) -> None:
        if self.closed:
            return
        if len(self._queue) >= self._max_queue:
            self.close_soon(Close.SLOW_CONSUMER, "slow consumer: messages were not read in time")
            return
        self._queue.append(data)
        if not self._dirty:
            self._dirty = True
            self._on_dirty(self)

    def deliver(self, delivery: Delivery) -> None:
        raise NotImplementedError

    def send(self, payload: bytes, *, event: str = "message") -> None:
        """A reply or event for this client only (not through a channel)."""
        self.deliver(Delivery(payload, event=event))

    def deliver_binary(self, frame: bytes) -> None:
        self.deliver(Delivery(frame, event="binary", binary=True))

    def flush(self) -> None:
        raise NotImplementedError

    def spawn(self, coroutine: Any, name: str | None = None) -> None:
        if self._tasks is None:
            self._tasks = set()
        task = asyncio.ensure_future(coroutine)
        if name is not None:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close_soon(self, code: int, reason: str, *, drain: bool = False) -> None:
        """Close without waiting. `drain` first sends what is queued (a last word to the
        client); otherwise queued messages are dropped (a slow or revoked client)."""
        if not self.closed:
            self.closed = True
            self.close_code = code
            if not drain:
                self._queue.clear()
            self.spawn(self._close(code, reason), name=CLOSING)

    async def _close(self, code: int, reason: str) -> None:
        raise NotImplementedError

    async def cancel_tasks(self) -> None:
        """Cancel this connection's tasks, but let a closing handshake finish (it is
        bounded), so the client learns the close code."""
        current = asyncio.current_task()
        pending = [task for task in self._tasks or () if task is not current]
        closing = [task for task in pending if task.get_name() == CLOSING]
        if closing:
            await asyncio.wait(closing, timeout=3)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class WebSocketConnection(Connection):
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

    async def _close(self, code: int, reason: str) -> None:
        if self._queue and not self.transport.is_closing():
            self.transport.write(b"".join(self._queue))
            self._queue.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()[:120]), 2)


class SSEConnection(Connection):
    kind = "sse"
    __slots__ = ("_ready", "composite", "finished", "pending_since", "response")

    def __init__(
        self,
        principal: Principal,
        settings: Settings,
        on_dirty: Callable[[Connection], None],
        response: EventSourceResponse,
    ) -> None:
        super().__init__(principal, settings, on_dirty)
        self.response = response
        self.composite = False  # several channels: ids are always `name=cursor,...`
        # Cursors asked for but not reached yet (channels still subscribing): they stay in
        # the ids until then, so a resume from any id loses nothing on any channel.
        self.pending_since: dict[str, str] = {}
        self.finished = asyncio.Event()
        self._ready = asyncio.Event()
        self.spawn(self._writer())

    def event_id(self) -> bytes:
        """The id of the next event: the cursor, or `channel=cursor,...` for several channels.
        A channel still subscribing shows the cursor it was asked to resume from, so an id
        is always a resume point that loses nothing on any channel."""
        subscriptions = self.subscriptions
        if not self.composite and len(subscriptions) == 1:
            return next(iter(subscriptions.values())).cursor.encode()
        parts = dict(self.pending_since)
        parts.update((s.channel, s.cursor) for s in subscriptions.values() if s.epoch)
        return ",".join(f"{name}={cursor}" for name, cursor in parts.items()).encode()

    def deliver(self, delivery: Delivery) -> None:
        if delivery.cursor is not None:
            # One channel: the id is the publication's own cursor (no per-client work).
            event_id = self.event_id() if self.composite else delivery.cursor.encode()
            self._enqueue(b"id: " + event_id + b"\n" + delivery.sse)
        else:
            self._enqueue(delivery.sse)

    def flush(self) -> None:
        self._dirty = False
        if self._queue:
            self._ready.set()

    async def _writer(self) -> None:
        try:
            while not self.closed:
                await self._ready.wait()
                self._ready.clear()
                while self._queue and not self.closed:
                    data = b"".join(self._queue)
                    self.sent += len(self._queue)
                    self._queue.clear()
                    await self.response.write(data)
        except (ConnectionError, RuntimeError):
            self.closed = True
        finally:
            self.finished.set()

    async def _close(self, code: int, reason: str) -> None:
        """SSE has no close frame: a last `close` event says why, then the stream ends."""
        event = b"event: close\ndata: " + orjson.dumps({"code": code, "reason": reason}) + b"\n\n"
        pending, self._queue = b"".join(self._queue), []
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.response.write(pending + event), 2)
        self.finished.set()
