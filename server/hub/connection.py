"""One realtime client, whatever carries it: its subscriptions, its bounded send queue, its
tasks, and how it is closed. The transports (ws_connection.py, sse_connection.py, the
WebRTC data channel bridge) say how the queue is written; the two a client's Session drives
(`SessionConnection`: WebSocket, event stream) also say how a subscription's replay is sent.

Fan-out never awaits a client. `deliver()` appends to the client's queue and marks it dirty;
the hub flushes every dirty client once per event-loop turn (flusher.py), so several
messages that arrived together go out in one write. When the queue exceeds
SEND_QUEUE_MESSAGES, or the bytes waiting for the client (held in its queue, or written but
still in its socket's buffer) exceed SEND_QUEUE_BYTES, the client is a slow consumer and is
closed (Close.SLOW_CONSUMER) without delaying anyone else. The queue's bytes are counted as
they are added and reset when it is written; the transports check what waits once per flush.
A burst (a replay, one large message) may pass the byte bound for a moment: a client is slow
when it stays over it for SLOW_GRACE seconds, or goes over twice the bound.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from server.hub.delivery import Delivery
from server.hub.protocol import Close
from server.hub.subscription import SubscribeResult, Subscription
from server.kernel.principal import Principal
from server.kernel.settings import Settings

CLOSING = "connection-close"
SLOW_GRACE = 1.0


class Connection:
    kind = "?"
    __slots__ = (
        "_buffer_limit",
        "_dirty",
        "_max_queue",
        "_max_queue_bytes",
        "_on_dirty",
        "_over_since",
        "_queue",
        "_queued_bytes",
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
        self.close_code: Close | None = None
        self._queue: list[bytes] = []
        self._queued_bytes = 0  # the queue's length in bytes: added up, never scanned
        self._over_since = 0.0  # when more than SEND_QUEUE_BYTES began to wait (0: not now)
        self._dirty = False
        self._on_dirty = on_dirty
        self._max_queue = settings.SEND_QUEUE_MESSAGES
        self._max_queue_bytes = settings.SEND_QUEUE_BYTES
        self._buffer_limit = settings.SEND_BUFFER_BYTES
        self._tasks: set[asyncio.Task[None]] | None = None  # made when first needed

    @property
    def user_id(self) -> int:
        return self.principal.user_id

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def sender(self) -> dict[str, Any]:
        """Who this client is in the `from` of what it publishes."""
        return {"user_id": self.user_id, "client_id": self.client_id}

    def info(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "user_id": self.user_id, "transport": self.kind}

    def _enqueue(self, data: bytes) -> None:
        if self.closed:
            return
        if len(self._queue) >= self._max_queue:
            self.slow_consumer()
            return
        self._queue.append(data)
        self._queued_bytes += len(data)
        if not self._dirty:
            self._dirty = True
            self._on_dirty(self)

    def _take_queue(self) -> list[bytes]:
        """The queued messages, to be written now; the queue starts again empty."""
        queue, self._queue, self._queued_bytes = self._queue, [], 0
        return queue

    def slow_consumer(self) -> None:
        self.close_soon(Close.SLOW_CONSUMER, "slow consumer: messages were not read in time")

    def too_far_behind(self, unsent: int) -> bool:
        """Called by a flush when more than SEND_QUEUE_BYTES wait for the client (held in
        the queue or in the socket's buffer): True, after closing it, when it is a slow
        consumer. (A flush finding less resets `_over_since`.)"""
        now = time.monotonic()
        if not self._over_since:
            self._over_since = now
        if unsent > 2 * self._max_queue_bytes or now - self._over_since >= SLOW_GRACE:
            self.slow_consumer()
            return True
        return False

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

    def close_soon(self, code: Close, reason: str, *, drain: bool = False) -> None:
        """Close without waiting. `drain` first sends what is queued (a last word to the
        client); otherwise queued messages are dropped (a slow or revoked client)."""
        if not self.closed:
            self.closed = True
            self.close_code = code
            if not drain:
                self._take_queue()
            self.spawn(self._close(code, reason), name=CLOSING)

    async def _close(self, code: Close, reason: str) -> None:
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


class SessionConnection(Connection):
    """A connection driven by a client's Session (server/hub/session.py)."""

    __slots__ = ()

    def replay(self, result: SubscribeResult, reply_id: Any) -> bool:
        """Tell the client its subscription stands, with the publications it missed. False:
        the subscription cannot go live (the transport ends the connection)."""
        raise NotImplementedError
