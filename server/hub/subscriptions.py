"""Subscribing a connection to a channel and back: names and permissions checked, the bus
subscribed before history is read (so nothing falls between them), recovery from a cursor,
presence, and the join/leave events of channels that announce them. Who may subscribe,
publish and see presence is access.py's to say (namespace rules, private channels'
members, subscription tokens); a member removed from a private channel (or every member,
when it is deleted) loses their subscriptions to it here, on every node (`on_removed`;
which ones: removals.py), and `recheck_members` catches a removal this node missed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.hub import wire
from server.hub.access import ChannelAccess, Grant
from server.hub.bus import Bus
from server.hub.channels import Channel, Channels
from server.hub.connection import Connection
from server.hub.fanout import Fanout
from server.hub.history import History
from server.hub.position import parse_cursor
from server.hub.presence import PresenceStore
from server.hub.protocol import Close, encode
from server.hub.removals import member_subscriptions, removed_connections, repeat
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
        users: Mapping[int, set[Connection]],
        access: ChannelAccess,
    ) -> None:
        self.redis = redis
        self.limit = limit  # MAX_SUBSCRIPTIONS per connection
        self.channels = channels
        self.history = history
        self.presence = presence
        self.bus = bus
        self.fanout = fanout
        self.users = users  # this node's connections by user (Registry.by_user)
        self.recoveries = {True: 0, False: 0}  # subscribes from a cursor: recovered or not
        self.access = access
        self.removals = 0  # private channel removals seen (a subscribe racing one looks again)
        self._subscribing: set[Subscription] = set()  # subscribe() has not returned yet

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

    async def check_subscribe(
        self, principal: Principal, channel: Channel, token: object = None, ref: Any = None
    ) -> Grant:
        """May `principal` subscribe (with a subscription `token`)? ProtocolError if not."""
        try:
            return await self.access.subscribe(principal, channel, token)
        except ChannelError as error:
            raise ProtocolError(error.code, error.message, ref) from None

    async def check_presence(
        self, connection: Connection | None, principal: Principal, channel: Channel, ref: Any = None
    ) -> None:
        """May `principal` (on `connection`, if any) see the channel's presence?"""
        subscription = connection.subscriptions.get(channel.name) if connection else None
        try:
            await self.access.presence(principal, channel, subscription)
        except ChannelError as error:
            raise ProtocolError(error.code, error.message, ref) from None

    async def check_rest_publish(
        self, principal: Principal, channel: Channel, ref: Any = None
    ) -> None:
        """May `principal` publish there without a connection (an HTTP upload)? A private
        channel's members may: their membership is looked up."""
        try:
            if channel.namespace.private:
                await self.access.by_rules("publish", principal, channel)
            else:
                self.channels.check_publish(principal, channel)
        except ChannelError as error:
            raise ProtocolError(error.code, error.message, ref) from None

    def check_publish(self, connection: Connection, channel: Channel, ref: Any = None) -> None:
        """May the client publish on the channel (given how it is subscribed to it)?"""
        subscription = connection.subscriptions.get(channel.name)
        try:
            self.access.publish(connection.principal, channel, subscription)
        except ChannelError as error:
            raise ProtocolError(error.code, error.message, ref) from None

    async def subscribe(
        self,
        connection: Connection,
        name: str,
        since: str | None,
        ref: Any = None,
        token: object = None,
    ) -> SubscribeResult:
        """Subscribe and recover from `since`. The subscription holds live messages back
        until `activate()`, so the transport can send the reply and the replay first."""
        channel = self.parse_channel(name, ref)
        removals = self.removals
        grant = await self.check_subscribe(connection.principal, channel, token, ref)
        if name in connection.subscriptions:
            raise ProtocolError("already_subscribed", f"already subscribed to {name}", ref)
        if len(connection.subscriptions) >= self.limit:
            raise ProtocolError("too_many_subscriptions", "subscription limit reached", ref)
        wanted = parse_cursor(since) if since else None
        if since and wanted is None:
            raise ProtocolError("bad_cursor", "since must be a cursor from a publication", ref)
        subscription = Subscription(name, grant.how, grant.publish)
        self.fanout.add(connection, subscription)
        self._subscribing.add(subscription)
        try:
            result = await self._subscribe(connection, channel, subscription, wanted, ref)
        finally:
            self._subscribing.discard(subscription)
        if grant.how == "member" and self.removals != removals:
            # A removal came while this was subscribing (on_removed passed it over): look
            # again, now that the removal is committed and the cached answer gone.
            await self._recheck(connection, channel, ref)
        return result

    async def _subscribe(
        self,
        connection: Connection,
        channel: Channel,
        subscription: Subscription,
        wanted: Any,
        ref: Any,
    ) -> SubscribeResult:
        name = channel.name
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

    async def _recheck(self, connection: Connection, channel: Channel, ref: Any) -> None:
        try:
            member = await self.access.membership.is_member(channel.name, connection.user_id)
        except Exception:
            member = False  # unsure: refuse (the client may subscribe again)
        if not member:
            with contextlib.suppress(RedisError, OSError, ProtocolError):
                await self.unsubscribe(connection, channel.name)
            raise ProtocolError("forbidden", f"{channel.name} is for its members only", ref)

    async def on_removed(self, event: dict[str, Any]) -> None:
        """Members were removed from a private channel, or it was deleted (on any node):
        end their "member" subscriptions to it here with an `unsubscribed` frame saying
        why. The connections are found by user (`user_ids`), or among the channel's
        subscribers (`all`): never by scanning every subscriber once per member."""
        self.removals += 1
        name = str(event.get("channel"))
        reason = str(event.get("reason") or "removed from the channel's members")
        ended = removed_connections(event, self.fanout.subscribers, self.users, self._subscribing)
        await self._end(name, ended, reason)

    async def recheck_members(self) -> int:
        """End the "member" subscriptions on this node whose user is no longer a member: a
        removal announced while this node was cut off from the bus never reached it. One
        (cached) lookup per distinct channel and user; how many subscriptions ended."""
        pairs = member_subscriptions(self.fanout.subscribers, self._subscribing)
        ended = 0
        for (name, user_id), connections in pairs.items():
            try:
                member = await self.access.membership.is_member(name, user_id)
            except (RedisError, OSError, TimeoutError) as error:
                log.warning("could not recheck private channel members: %s", error)
                return ended  # the next round (or the bus's resync) tries again
            if not member:
                ended += await self._end(name, connections, "removed from the channel's members")
        return ended

    async def keep_checking_members(self, interval: float) -> None:
        """recheck_members() every `interval` seconds, until cancelled."""
        await repeat(interval, self.recheck_members, "private channel member recheck")

    async def _end(self, name: str, connections: list[Connection], reason: str) -> int:
        """End these connections' "member" subscriptions to `name`, each with an
        `unsubscribed` frame (an event stream or data channel left with none ends)."""
        frame = encode(
            {"type": "unsubscribed", "channel": name, "code": "removed", "reason": reason}
        )
        ended: list[Connection] = []
        for connection in connections:
            subscription = connection.subscriptions.get(name)
            if subscription is None or subscription.grant != "member":
                continue  # gone meanwhile, or subscribed again otherwise (a token)
            self._drop(connection, name, release_bus=True)
            connection.send(frame, event="unsubscribed")
            if not connection.subscriptions and connection.kind != "ws":
                connection.flush()  # the frame first (a data channel closes at once)
                connection.close_soon(Close.NORMAL, f"unsubscribed from {name}", drain=True)
            ended.append(connection)
        channel = self.channels.parse(name)
        for start in range(0, len(ended), 100):
            await asyncio.gather(
                *(self._left(channel, connection) for connection in ended[start : start + 100])
            )
        return len(ended)

    async def _left(self, channel: Channel, connection: Connection) -> None:
        """Presence and leave event of a subscription that ended."""
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            if channel.namespace.presence:
                await self.presence.remove(channel.name, connection.client_id)
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
