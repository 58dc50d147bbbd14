"""One WebSocket client's publishing: the rate it may publish at, and its publishes on their
way to Redis. They go in bursts, in order, one round trip per burst, while the client's
reader goes on; acks follow in the same order. (publisher.py publishes for anyone; this is
one client's side of it, made on its first publish.)"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.exceptions import RedisError

from server.hub.connection import Connection
from server.hub.hub import Hub
from server.hub.protocol import Message, encode, error_frame
from server.hub.ratelimit import TokenBucket
from server.kernel.realtime_errors import ProtocolError
from server.kernel.settings import Settings

PER_ROUND_TRIP = 100  # publishes of one connection sent to Redis in one round trip


class Publishing:
    __slots__ = ("_connection", "_hub", "_outgoing", "_sending", "rate")

    def __init__(self, hub: Hub, connection: Connection, settings: Settings) -> None:
        self.rate = TokenBucket(settings.PUBLISH_RATE, settings.PUBLISH_BURST)
        self._hub = hub
        self._connection = connection
        self._outgoing: list[tuple[str, bytes, Message]] = []  # publishes not yet sent
        self._sending: asyncio.Future[None] | None = None

    def may_publish(self, name: str, ref: Any) -> None:
        """Refuse unless the channel exists, the client may publish there, and it is not
        publishing too fast."""
        channel = self._hub.parse_channel(name, ref)
        self._hub.subscriptions.check_publish(self._connection, channel, ref)
        if not self.rate.take():
            raise ProtocolError("rate_limited", "publishing too fast; slow down", ref)

    def put(self, channel: str, data: bytes, message: Message) -> None:
        """Publish `data` (JSON) on `channel`; the client gets an ack, or an error, for
        `message`."""
        self._outgoing.append((channel, data, message))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.ensure_future(self._send())

    async def finish(self) -> None:
        """Let what is queued reach Redis (for at most 5 seconds): the client is going."""
        if self._sending is not None and not self._sending.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._sending), 5)

    async def _send(self) -> None:
        connection = self._connection
        sender = connection.sender
        while self._outgoing:
            burst = self._outgoing[:PER_ROUND_TRIP]
            self._outgoing = self._outgoing[PER_ROUND_TRIP:]
            try:
                results = await self._hub.publish_many([(c, d, sender) for c, d, _ in burst])
            except (RedisError, OSError, TimeoutError) as error:
                results = [error] * len(burst)
            for (_, _, message), result in zip(burst, results, strict=True):
                if isinstance(result, BaseException):
                    ref = message.id if message.id is not None else message.type  # type: ignore[attr-defined]
                    connection.send(error_frame("unavailable", "could not publish; retry", ref=ref))
                    continue
                ack = {"type": "ack", "offset": result.offset, "cursor": result.cursor}
                if message.id is not None:
                    ack["id"] = message.id
                connection.send(encode(ack))
