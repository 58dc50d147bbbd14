"""An event stream client (Server-Sent Events). It has one writer task, because a streamed
HTTP response must be written through aiohttp (chunked encoding). Each publication's event
id is a resume point: its cursor, or with several channels `name=cursor,...`. While the
writer waits for the client to take its last write (aiohttp drains the socket's buffer),
the queue holds what comes next, and SEND_QUEUE_BYTES bounds it (connection.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp_sse import EventSourceResponse

from server.hub.connection import Connection, SessionConnection
from server.hub.delivery import Delivery
from server.hub.protocol import Close, encode, error_frame
from server.hub.subscription import SubscribeResult
from server.kernel.principal import Principal
from server.kernel.realtime_errors import RealtimeError
from server.kernel.settings import Settings


class SSEConnection(SessionConnection):
    kind = "sse"
    __slots__ = ("_ready", "_writing", "composite", "finished", "pending_since", "response")

    def __init__(
        self,
        principal: Principal,
        settings: Settings,
        on_dirty: Callable[[Connection], None],
        response: EventSourceResponse,
        *,
        composite: bool = False,
        since: dict[str, str] | None = None,
    ) -> None:
        super().__init__(principal, settings, on_dirty)
        self.response = response
        self.composite = composite  # several channels: ids are always `name=cursor,...`
        # Cursors asked for but not reached yet (channels still subscribing): they stay in
        # the ids until then, so a resume from any id loses nothing on any channel.
        self.pending_since: dict[str, str] = dict(since or {})
        self.finished = asyncio.Event()
        self._ready = asyncio.Event()
        self._writing = False  # the writer waits for the client to take its last write
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

    def replay(self, result: SubscribeResult, reply_id: Any) -> bool:
        """The missed publications, each with its own id, then `subscribed` (the channel is
        live from here). When they are beyond the history: `recovery-failed`, and the stream
        ends. Its id puts the channel at its position now (the others where they were), so
        EventSource's own reconnection goes on live instead of failing again forever."""
        subscription = result.subscription
        name, position = subscription.channel, result.position
        if not result.recovered:
            failed = {"type": "recovery-failed", "channel": name, "cursor": position.cursor}
            self.pending_since[name] = position.cursor
            event_id = self.event_id() if self.composite else position.cursor.encode()
            event = Delivery(encode(failed), event="recovery-failed")
            self._enqueue(b"id: " + event_id + b"\n" + event.sse)
            self.close_soon(Close.NORMAL, "recovery failed: reload and subscribe again", drain=True)
            return False
        self.pending_since.pop(name, None)
        for delivery in result.replay:
            subscription.epoch, subscription.offset = delivery.epoch, delivery.offset
            self.deliver(delivery)
        subscription.epoch, subscription.offset = position.epoch, position.offset
        live = {"type": "subscribed", "channel": name, "cursor": position.cursor, "recovered": True}
        self.deliver(Delivery(encode(live), event="subscribed", cursor=position.cursor))
        return True

    def refuse(self, channel: str, error: RealtimeError) -> None:
        """A channel that could not be subscribed: an `error` event, and the stream ends."""
        self.send(error_frame(error.code, error.message, channel=channel), event="error")
        self.close_soon(Close.INTERNAL, error.message, drain=True)

    def flush(self) -> None:
        self._dirty = False
        if not self._queue:
            return
        if self._writing and self._queued_bytes > self._max_queue_bytes:
            if self.too_far_behind(self._queued_bytes):
                return
        elif self._over_since:
            self._over_since = 0.0
        self._ready.set()

    async def _writer(self) -> None:
        try:
            while not self.closed:
                await self._ready.wait()
                self._ready.clear()
                while self._queue and not self.closed:
                    queue = self._take_queue()
                    self.sent += len(queue)
                    self._writing = True
                    await self.response.write(b"".join(queue))
                    self._writing = False
        except (ConnectionError, RuntimeError):
            self.closed = True
        finally:
            self.finished.set()

    async def _close(self, code: Close, reason: str) -> None:
        """SSE has no close frame: a last `close` event says why, then the stream ends."""
        event = b"event: close\ndata: " + orjson.dumps({"code": code, "reason": reason}) + b"\n\n"
        pending = b"".join(self._take_queue())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.response.write(pending + event), 2)
        self.finished.set()
