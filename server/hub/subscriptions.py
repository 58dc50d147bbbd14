"""Subscribing a connection to a channel and back: names and permissions checked, the bus
subscribed before history is read (so nothing falls between them), recovery from a cursor,
presence, and the join/leave events of channels that announce them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.hub import wire
from server.hub.bus import Bus
from server.hub.channels import Channel, Channels
from server.hub.connection import Connection
from server.hub.fanout import Fanout
from server.hub.history import History
from server.hub.position import parse_cursor
from server.hub.presence import PresenceStore
from server.hub.subscription import SubscribeResult, Subscription
from server.kernel.principal import Principal
from server.kernel.realtime_errors import ChannelError, ProtocolError
from storage.redis import publish

log = logging.getLogger(__name__)

Check = Callable[[Principal, Channel], None]


class Subscriptions:
    def __init__(
        self,
        redis: Redis,
        limit: int,
        channels: Channels,
        history: History,
        presence: PresenceStore,
        bus: Bus,
        fanout: Fanout,
    ) -> None:
        self.redis = redis
        self.limit = limit  # MAX_SUBSCRIPTIONS per connection
        self.channels = channels
        self.history = history
        self.presence = presence
        self.bus = bus
        self.fanout = fanout
        self.recoveries = {True: 0, False: 0}  # subscribes from a cursor: recovered or not

    def parse_channel(self, name: object, ref: Any = None) -> Channel:
        try:
            return self.channels.parse(name)
        except ChannelError as error:
            raise ProtocolError(error.code, error.message, ref) from None

    def check(self, check: Check, principal: Principal, channel: Channel, ref: Any = None) -> None:
        try:
            check(principal, channel)
        except ChannelError as error:
            raise ProtocolError(error.code, error.message, ref) from None

    async def subscribe(
        self, connection: Connection, name: str, since: str | None, ref: Any = None
    ) -> SubscribeResult:
        """Subscribe and recover from `since`. The subscription holds live messages back
        until `activate()`, so the transport can send the reply and the replay first."""
        channel = self.parse_channel(name, ref)
        self.check(self.channels.check_subscribe, connection.principal, channel, ref)
        if name in connection.subscriptions:
            raise ProtocolError("already_subscribed", f"already subscribed to {name}", ref)
        if len(connection.subscriptions) >= self.limit:
            raise ProtocolError("too_many_subscriptions", "subscription limit reached", ref)
        wanted = parse_cursor(since) if since else None
        if since and wanted is None:
            raise ProtocolError("bad_cursor", "since must be a cursor from a publication", ref)
        subscription = Subscription(name)
        self.fanout.add(connection, subscription)
        acquired = False
        try:
            await self.bus.acquire(self.history.bus_channel(name))
            acquired = True
            # If the bus resubscribes from here until activate(), it may miss publications
            # made after the read below: activate() then catches up from history first.
            subscription.resubscriptions = self.fanout.resubscriptions
            if wanted is not None:
                recovery = await self.history.recover(name, wanted)
                position, recovered, replay = recovery.position, recovery.recovered, recovery.replay
                self.recoveries[recovered] += 1
            else:
                position, recovered, replay = await self.history.position(name), True, []
            if channel.namespace.presence:
                await self.presence.add(name, connection.client_id, connection.info())
        except (RedisError, OSError, TimeoutError) as error:
            self._drop(connection, name, release_bus=acquired)
            log.warning("subscribe to %s failed: %s", name, error)
            raise ProtocolError(
                "unavailable", "channels are unavailable right now; retry", ref
            ) from None
        subscription.epoch, subscription.offset = position.epoch, position.offset
        if channel.namespace.join_leave:
            await self._announce("join", channel, connection)
        return SubscribeResult(subscription, position, recovered, replay)

    def activate(self, connection: Connection, subscription: Subscription) -> None:
        """Go live: deliver what arrived during recovery (dropping what the replay had)."""
        self.fanout.activate(connection, subscription)

    async def unsubscribe(self, connection: Connection, name: str, ref: Any = None) -> None:
        if name not in connection.subscriptions:
            raise ProtocolError("not_subscribed", f"not subscribed to {name}", ref)
        self._drop(connection, name, release_bus=True)
        channel = self.channels.parse(name)
        if channel.namespace.presence:
            await self.presence.remove(name, connection.client_id)
        if channel.namespace.join_leave:
            await self._announce("leave", channel, connection)

    async def renew_presence(self) -> None:
        """Extend the presence leases of this node's members (every PRESENCE_TTL/3)."""
        await self.presence.renew(
            {
                name: [connection.client_id for connection in subscribers]
                for name, subscribers in list(self.fanout.subscribers.items())
                if self.channels.parse(name).namespace.presence
            }
        )

    def _drop(self, connection: Connection, name: str, *, release_bus: bool) -> None:
        self.fanout.remove(connection, name)
        if release_bus:
            self.bus.release(self.history.bus_channel(name))

    async def _announce(self, event: str, channel: Channel, connection: Connection) -> None:
        """An ephemeral event for the channel's current subscribers (not in history)."""
        message = wire.event_message(
            {"type": event, "channel": channel.name, "info": connection.info()}
        )
        with contextlib.suppress(RedisError, OSError):
            await publish(self.redis, self.history.bus_channel(channel.name), message)
