"""An event stream client (Server-Sent Events), over its socket (sse_protocol.py): the
flush of socket_connection.py writes its queue as one chunk of the chunked body. Each
publication's event id is a resume point: its cursor, or with several channels
`name=cursor,...`. A keep-alive comment every SSE_PING_INTERVAL (the hub's `keepalive`
ring); a last `close` event says why the server ends the stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from server.hub.connection import Connection
from server.hub.delivery import Delivery
from server.hub.protocol import Close, encode, error_frame
from server.hub.socket_connection import SocketConnection
from server.hub.sse_protocol import EventStreamProtocol
from server.hub.subscription import SubscribeResult
from server.kernel.principal import Principal
from server.kernel.realtime_errors import RealtimeError
from server.kernel.settings import Settings

PING = b": ping\r\n\r\n"  # a comment: EventSource ignores it


class SSEConnection(SocketConnection):
    kind = "sse"
    __slots__ = ("composite", "pending_since")
    socket: EventStreamProtocol | None

    def __init__(
        self,
        principal: Principal,
        settings: Settings,
        on_dirty: Callable[[Connection], None],
        transport: asyncio.Transport,
        *,
        composite: bool = False,
        since: dict[str, str] | None = None,
    ) -> None:
        super().__init__(principal, settings, on_dirty, transport)
        self.composite = composite  # several channels: ids are always `name=cursor,...`
        # Cursors asked for but not reached yet (channels still subscribing): they stay in
        # the ids until then, so a resume from any id loses nothing on any channel.
        self.pending_since: dict[str, str] = dict(since or {})

    def _framed(self, data: bytes) -> bytes:
        return b"%x\r\n%b\r\n" % (len(data), data)  # one chunk of the chunked body

    def ping(self, now: float) -> None:
        """A keep-alive comment, written now, between whole events. An event stream's
        client never answers: it is not judged (`seen` moves with the ping)."""
        self.pinged = self.seen = now
        self.write_now(self._framed(PING))

    def unresponsive(self) -> None:
        pass  # never called: `seen` is never behind `pinged`

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

    async def _close(self, code: Close, reason: str) -> None:
        """SSE has no close frame: a last `close` event says why, then the stream ends."""
        event = b"event: close\ndata: " + orjson.dumps({"code": code, "reason": reason}) + b"\n\n"
        pending = b"".join(self._take_queue())
        if self.socket is not None:
            await self.socket.close(self._framed(pending + event))
