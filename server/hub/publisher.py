"""Publishing on a channel from anywhere that has Redis: the server's hub, the worker, a
script. The publication is numbered, kept in the channel's history and fanned out to every
node in one atomic step (wire.py's script, run by history.py)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from redis.asyncio import Redis

from server.hub import wire
from server.hub.history import History, Item
from server.hub.position import Position
from server.kernel import jsonutil, spans
from server.kernel.namespaces import history_sizes, parse_namespaces
from server.kernel.settings import Settings
from storage.coalescer import Coalescer

_tracer = trace.get_tracer("server.hub")


class ChannelPublisher:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.history = History(
            redis,
            settings.REDIS_PREFIX,
            settings.HISTORY_SIZE,
            settings.HISTORY_TTL,
            sizes=history_sizes(parse_namespaces(settings.CHANNEL_NAMESPACES)),
        )
        # Concurrent single publications (one per worker job, per REST call) share one
        # pipelined round trip; Redis runs them in the order they were submitted.
        self._batches: Coalescer[Item, Position] = Coalescer(
            self.history.publish_many, name="channel-publisher"
        )

    async def publish(
        self, channel: str, data_json: bytes, sender: dict[str, Any] | None
    ) -> Position:
        """`data_json` is the encoded payload; `sender` is {"user_id", "client_id"}, or None
        for the server itself."""
        parts = wire.publication_parts(channel, data_json, sender)
        with spans.span(_tracer, "realtime publish", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.destination.name", channel)
            return await self._batches.submit((channel, parts))

    async def publish_many(
        self, items: list[tuple[str, bytes, dict[str, Any] | None]]
    ) -> list[Position | BaseException]:
        """Several publications in order, in one round trip (one connection's burst)."""
        framed = [
            (channel, wire.publication_parts(channel, data, sender))
            for channel, data, sender in items
        ]
        with spans.span(_tracer, "realtime publish", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.batch.message_count", len(items))
            return await self.history.publish_many(framed)

    async def publish_value(
        self, channel: str, data: Any, sender: dict[str, Any] | None = None
    ) -> Position:
        # jsonutil: a stored notification's data may hold an integer beyond 64 bits
        return await self.publish(channel, jsonutil.dumps(data), sender)
