"""Hub: the realtime core of one server node, assembled from its parts.

It knows this node's connections (registry.py) and subscribes them to channels
(subscriptions.py, fanout.py), publishes through the history script (publisher.py, wire.py),
receives every subscribed channel's messages through the bus (bus.py) and hands them to
fan-out, which writes them with one flush per event-loop turn (flusher.py). It also closes
connections whose session was revoked, keeps presence leases alive and reports its stats
(stats.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Coroutine
from typing import Any

import orjson
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.auth.subscription_tokens import SubscriptionTokens
from server.hub import upkeep, wire
from server.hub.access import ChannelAccess
from server.hub.bus import Bus
from server.hub.channels import Channel, Channels
from server.hub.connection import Connection
from server.hub.fanout import Fanout
from server.hub.flusher import Flusher
from server.hub.heartbeat import Heartbeat
from server.hub.position import Position
from server.hub.presence import PresenceStore
from server.hub.private import RECHECK_INTERVAL, Membership
from server.hub.protocol import Close
from server.hub.publisher import ChannelPublisher
from server.hub.registry import Registry
from server.hub.stats import NodeStats
from server.hub.subscription import SubscribeResult, Subscription
from server.hub.subscriptions import Check, Subscriptions
from server.kernel.namespaces import parse_namespaces
from server.kernel.principal import Principal
from server.kernel.realtime_errors import ProtocolError
from server.kernel.settings import Settings
from storage.db import Pool
from storage.redis import publish

log = logging.getLogger(__name__)

Sender = dict[str, Any] | None  # {"user_id", "client_id"}, or None for the server itself


class Hub:
    def __init__(self, settings: Settings, redis: Redis, db: Pool | None = None) -> None:
        """`db`: where private channels' members are read from (none: only admins may use
        private channels)."""
        self.settings = settings
        self.redis = redis
        prefix = settings.REDIS_PREFIX
        self.node_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.channels = Channels(parse_namespaces(settings.CHANNEL_NAMESPACES))
        self.publisher = ChannelPublisher(settings, redis)
        history = self.publisher.history
        self.presence = PresenceStore(redis, prefix, settings.PRESENCE_TTL)
        self.flusher = Flusher()  # a connection's `on_dirty` is `hub.flusher.mark_dirty`
        self.registry = Registry()
        self.heartbeat = Heartbeat(settings.WS_HEARTBEAT)  # the WebSockets' pings
        self.keepalive = Heartbeat(settings.SSE_PING_INTERVAL)  # the event streams' comments
        self.fanout = Fanout(self.flusher, history)
        self.node_stats = NodeStats(redis, prefix, self.node_id, self.registry, self.fanout)
        self._bus_prefix = history.bus_prefix  # read on every bus message
        self.revocation_channel = f"{prefix}:auth:revocations"
        self.direct_channel = f"{prefix}:direct"
        self.membership = Membership(redis, db, prefix)
        self.bus = Bus(
            redis,
            self._on_bus,
            self._resync,
            [self.revocation_channel, self.direct_channel, self.membership.removals],
        )
        self.subscriptions = Subscriptions(
            redis,
            settings.MAX_SUBSCRIPTIONS,
            self.channels,
            history,
            self.presence,
            self.bus,
            self.fanout,
            self.registry.by_user,
            ChannelAccess(
                self.channels,
                self.membership,
                SubscriptionTokens(settings.SUBSCRIPTION_TOKEN_KEY.get_secret_value()),
            ),
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._endings: set[asyncio.Task[None]] = set()  # sessions being closed

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._spawn(self.bus.run())
        self._spawn(self.heartbeat.run())
        self._spawn(self.keepalive.run())
        self._spawn(self.subscriptions.keep_checking_members(RECHECK_INTERVAL))
        self._spawn(
            upkeep.keep_up(
                self.settings.PRESENCE_TTL,
                self.subscriptions.renew_presence,
                self.node_stats.report,
            )
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close_connections(
        self, code: Close = Close.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        """On shutdown: tell every client to go away, give them a moment to close, and
        their sessions a moment to end."""
        await self.registry.close_all(code, reason)
        if self._endings:
            await asyncio.wait(list(self._endings), timeout=3)

    def ending(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """A client's session ending (socket_protocol.py): held until done."""
        task = asyncio.ensure_future(coroutine)
        self._endings.add(task)
        task.add_done_callback(self._endings.discard)

    async def stop(self) -> None:
        await self.bus.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=3) if tasks else (set(), set())
        for task in stuck:
            log.error("hub task %s did not stop", task.get_name())
        with contextlib.suppress(RedisError, OSError):
            await self.node_stats.withdraw()

    # -- connections and their subscriptions (registry.py, subscriptions.py) -----------------

    @property
    def connections(self) -> dict[str, Connection]:
        """This node's connections by client id."""
        return self.registry.connections

    def register(self, connection: Connection) -> None:
        self.registry.add(connection)

    async def unregister(self, connection: Connection) -> None:
        """Forget a connection that ended: its subscriptions, then its tasks."""
        connection.closed = True
        self.registry.remove(connection)
        for name in list(connection.subscriptions):
            with contextlib.suppress(RedisError, OSError, ProtocolError):
                await self.subscriptions.unsubscribe(connection, name)
        await connection.cancel_tasks()

    def parse_channel(self, name: object, ref: Any = None) -> Channel:
        """The channel `name` names, or ProtocolError answering `ref`."""
        return self.subscriptions.parse_channel(name, ref)

    def check(self, check: Check, principal: Principal, channel: Channel, ref: Any = None) -> None:
        """Run a permission check of `self.channels` (check_subscribe, check_publish); a
        refusal is a ProtocolError answering `ref`."""
        self.subscriptions.check(check, principal, channel, ref)

    async def subscribe(
        self,
        connection: Connection,
        name: str,
        since: str | None,
        ref: Any = None,
        token: object = None,
    ) -> SubscribeResult:
        """Subscribe and recover from the cursor `since`; live messages wait until
        `activate()`, so the transport can send the replay first. `token`: a subscription
        token (server/auth/subscription_tokens.py)."""
        return await self.subscriptions.subscribe(connection, name, since, ref, token)

    def activate(self, connection: Connection, subscription: Subscription) -> None:
        """Go live: deliver what arrived during recovery."""
        self.subscriptions.activate(connection, subscription)

    async def unsubscribe(self, connection: Connection, name: str, ref: Any = None) -> None:
        """Leave a channel; ProtocolError answering `ref` when not subscribed to it."""
        await self.subscriptions.unsubscribe(connection, name, ref)

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, name: str, data_json: bytes, sender: Sender) -> Position:
        """Append to the channel's history and fan out on every node. `data_json` is the
        encoded payload."""
        position = await self.publisher.publish(name, data_json, sender)
        self.node_stats.published += 1
        return position

    async def publish_many(
        self, items: list[tuple[str, bytes, Sender]]
    ) -> list[Position | BaseException]:
        results = await self.publisher.publish_many(items)
        self.node_stats.published += sum(1 for r in results if isinstance(r, Position))
        return results

    async def publish_binary(self, name: str, frame: bytes) -> None:
        """A small binary message for the channel's current subscribers (not in history)."""
        bus_channel = self.publisher.history.bus_channel(name)
        await publish(self.redis, bus_channel, wire.binary_message(frame))
        self.node_stats.published += 1

    async def send_to_client(
        self, client_id: str, frame: dict[str, Any], *, sender_id: int | None, admin: bool
    ) -> None:
        """A message for one connection, wherever it is connected. The node holding it
        delivers only if the sender owns that connection, is an admin, or is the server."""
        message = wire.direct_message(client_id, frame, sender_id, admin)
        await publish(self.redis, self.direct_channel, message)

    def _on_bus(self, bus_channel: str, data: bytes) -> None:
        channel = wire.channel_of(self._bus_prefix, bus_channel)
        if channel is not None:
            self.fanout.on_message(channel, data)
        elif bus_channel == self.revocation_channel:
            self.registry.revoke(orjson.loads(data))
        elif bus_channel == self.direct_channel:
            self.registry.direct(orjson.loads(data))
        elif bus_channel == self.membership.removals:
            self._spawn(self.subscriptions.on_removed(orjson.loads(data)))

    def _resync(self) -> None:
        """After the bus reconnected: give every subscriber what it missed meanwhile."""
        self._spawn(self.fanout.recover_all())
        # Removals announced while the bus was down are lost: look at the members again.
        self._spawn(self._recheck_members())

    async def _recheck_members(self) -> None:
        await self.subscriptions.recheck_members()

    # -- private channels (private.py) -------------------------------------------------------

    async def private_channel_created(self, channel: str) -> None:
        """After a private channel was created: no answer cached about an earlier channel
        of that name, and none of its history, may apply to the new one."""
        await self.membership.reset(channel, self.publisher.history.keys(channel))

    async def private_channel_deleted(self, channel: str, reason: str) -> None:
        """After a private channel's deletion was committed (DELETE, or its owner's account
        deleted): its cached answers and its history go, and every node ends its members'
        subscriptions (one event, whatever the number of members)."""
        await self.membership.reset(channel, self.publisher.history.keys(channel))
        await self.membership.announce(channel, {"all": True}, reason)

    async def cluster_stats(self) -> list[dict[str, Any]]:
        """Every live node's latest stats (this node's are current)."""
        return await self.node_stats.cluster()


hub_key: web.AppKey[Hub] = web.AppKey("hub", Hub)
