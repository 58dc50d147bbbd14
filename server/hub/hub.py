"""Hub: the realtime core of one server node.

It knows this node's connections and their subscriptions, publishes through the history
script (history.py), receives every channel's publications through the bus (bus.py) and
fans them out: one encoded frame for all subscribers, no await per subscriber, one flush
per event-loop turn. It also closes connections whose session was revoked, keeps presence
leases alive and reports its stats to Redis for GET /realtime/stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.hub.bus import Bus
from server.hub.channels import Channel, Channels
from server.hub.connection import Connection, Delivery, Subscription
from server.hub.history import Position, parse_cursor
from server.hub.presence import PresenceStore
from server.hub.protocol import Close
from server.hub.publisher import ChannelPublisher
from server.kernel.namespaces import parse_namespaces
from server.kernel.principal import Principal
from server.kernel.realtime_errors import ChannelError, ProtocolError
from server.kernel.settings import Settings

log = logging.getLogger(__name__)

STATS_INTERVAL = 5.0
# Write coalescing: when a flush carries a fan-out to at least BUSY_FLUSH subscribers and
# follows the previous flush within RAPID_FLUSHES seconds, it waits FLUSH_DELAY (the most it
# adds to latency) so that more messages share each write.
FLUSH_DELAY = 0.004
RAPID_FLUSHES = 0.015
BUSY_FLUSH = 64


@dataclass
class SubscribeResult:
    subscription: Subscription
    position: Position
    recovered: bool
    frames: list[bytes]


class Hub:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        prefix = settings.REDIS_PREFIX
        self.node_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.channels = Channels(parse_namespaces(settings.CHANNEL_NAMESPACES))
        self.publisher = ChannelPublisher(settings, redis)
        self.history = self.publisher.history
        self.presence = PresenceStore(redis, prefix, settings.PRESENCE_TTL)
        self.connections: dict[str, Connection] = {}
        self._subscribers: dict[str, dict[Connection, Subscription]] = {}
        self._by_user: dict[int, set[Connection]] = {}
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self._fanout = False  # a large channel fan-out waits in this flush
        self._deferred = False
        self._last_flush = 0.0
        self._bus_prefix = f"{prefix}:bus:"
        self.revocation_channel = f"{prefix}:auth:revocations"
        self.direct_channel = f"{prefix}:direct"
        self._nodes_key = f"{prefix}:nodes"
        self.bus = Bus(
            redis, self._on_bus, self._resync, [self.revocation_channel, self.direct_channel]
        )
        self.published = 0
        self.delivered = 0
        self.started_at = time.time()
        self._tasks: set[asyncio.Task[None]] = set()
        self._empty = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._spawn(self.bus.run())
        self._spawn(self._maintain())

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close_connections(
        self, code: int = Close.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        """On shutdown: tell every client to go away, give them a moment to close."""
        for connection in list(self.connections.values()):
            connection.close_soon(code, reason)
        if self.connections:
            self._empty.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), 3)

    async def stop(self) -> None:
        await self.bus.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=3) if tasks else (set(), set())
        for task in stuck:
            log.error("hub task %s did not stop", task.get_name())
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hdel(self._nodes_key, self.node_id)

    # -- connections -------------------------------------------------------------------------

    def mark_dirty(self, connection: Connection) -> None:
        self._dirty.append(connection)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        if self._fanout and not self._deferred and loop.time() - self._last_flush < RAPID_FLUSHES:
            # Large channel fan-outs, one after another: wait a moment so publications
            # arriving meanwhile share each client's write (one syscall for several). Replies
            # (pong, ack) and occasional publications never wait.
            self._deferred = True
            loop.call_later(FLUSH_DELAY, self._flush)
            return
        dirty, self._dirty = self._dirty, []
        self._flush_scheduled = self._deferred = self._fanout = False
        self._last_flush = loop.time()
        for connection in dirty:
            connection.flush()

    def register(self, connection: Connection) -> None:
        self.connections[connection.client_id] = connection
        self._by_user.setdefault(connection.user_id, set()).add(connection)

    async def unregister(self, connection: Connection) -> None:
        connection.closed = True
        self.connections.pop(connection.client_id, None)
        if not self.connections:
            self._empty.set()
        users = self._by_user.get(connection.user_id)
        if users is not None:
            users.discard(connection)
            if not users:
                del self._by_user[connection.user_id]
        for name in list(connection.subscriptions):
            with contextlib.suppress(RedisError, OSError, ProtocolError):
                await self.unsubscribe(connection, name)
        await connection.cancel_tasks()

    def user_connections(self, user_id: int) -> set[Connection]:
        return self._by_user.get(user_id, set())

    # -- channels ----------------------------------------------------------------------------

    def parse_channel(self, name: object, ref: Any = None) -> Channel:
        try:
            return self.channels.parse(name)
        except ChannelError as error:
            raise ProtocolError(error.code, error.message, ref) from None

    def check(self, check: Any, principal: Principal, channel: Channel, ref: Any = None) -> None:
        try:
            check(principal, channel)
        except ChannelError as error:
            raise ProtocolError(error.code, error.message, ref) from None

    async def subscribe(
        self, connection: Connection, name: str, since: str | None, ref: Any = None
    ) -> SubscribeResult:
        """Subscribe and recover. The subscription holds live messages back until
        `activate()`, so the caller can send the reply and history first."""
        channel = self.parse_channel(name, ref)
        self.check(self.channels.check_subscribe, connection.principal, channel, ref)
        if name in connection.subscriptions:
            raise ProtocolError("already_subscribed", f"already subscribed to {name}", ref)
        if len(connection.subscriptions) >= self.settings.MAX_SUBSCRIPTIONS:
            raise ProtocolError("too_many_subscriptions", "subscription limit reached", ref)
        wanted = None
        if since:
            wanted = parse_cursor(since)
            if wanted is None:
                raise ProtocolError("bad_cursor", "since must be a cursor from a publication", ref)
        subscription = Subscription(name)
        connection.subscriptions[name] = subscription
        self._subscribers.setdefault(name, {})[connection] = subscription
        acquired = False
        try:
            await self.bus.acquire(self.history.bus_channel(name))
            acquired = True
            if wanted is not None:
                recovery = await self.history.recover(name, wanted)
                position, recovered, frames = recovery.position, recovery.recovered, recovery.frames
            else:
                position, recovered, frames = await self.history.position(name), True, []
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
            await self.publish_event(
                name, {"type": "join", "channel": name, "info": connection.info()}
            )
        return SubscribeResult(subscription, position, recovered, frames)

    def activate(self, connection: Connection, subscription: Subscription) -> None:
        """Deliver what arrived during recovery (dropping what recovery already had)."""
        held, subscription.buffer = subscription.buffer or [], None
        for epoch, offset, delivery in held:
            self._deliver_one(connection, subscription, epoch, offset, delivery)

    async def unsubscribe(self, connection: Connection, name: str, ref: Any = None) -> None:
        if name not in connection.subscriptions:
            raise ProtocolError("not_subscribed", f"not subscribed to {name}", ref)
        self._drop(connection, name, release_bus=True)
        channel = self.channels.parse(name)
        if channel.namespace.presence:
            await self.presence.remove(name, connection.client_id)
        if channel.namespace.join_leave:
            await self.publish_event(
                name, {"type": "leave", "channel": name, "info": connection.info()}
            )

    def _drop(self, connection: Connection, name: str, *, release_bus: bool) -> None:
        connection.subscriptions.pop(name, None)
        subscribers = self._subscribers.get(name)
        if subscribers is not None:
            subscribers.pop(connection, None)
            if not subscribers:
                del self._subscribers[name]
        if release_bus:
            self.bus.release(self.history.bus_channel(name))

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, name: str, data_json: bytes, sender: dict[str, Any] | None) -> Position:
        """Append to the channel's history and fan out on every node. `data_json` is the
        encoded payload; `sender` is {"user_id", "client_id"} or None for the server."""
        position = await self.publisher.publish(name, data_json, sender)
        self.published += 1
        return position

    async def publish_many(
        self, items: list[tuple[str, bytes, dict[str, Any] | None]]
    ) -> list[Position | BaseException]:
        results = await self.publisher.publish_many(items)
        self.published += sum(1 for r in results if isinstance(r, Position))
        return results

    async def publish_binary(self, name: str, frame: bytes, header: dict[str, Any]) -> None:
        """A small binary message for the channel's current subscribers (not in history)."""
        await self.redis.publish(self.history.bus_channel(name), b"b\n\n" + frame)
        self.published += 1

    async def publish_event(self, name: str, frame: dict[str, Any]) -> None:
        """An ephemeral event (join, leave) for the channel's current subscribers only."""
        with contextlib.suppress(RedisError, OSError):
            await self.redis.publish(self.history.bus_channel(name), b"e\n\n" + orjson.dumps(frame))

    async def send_to_client(
        self, client_id: str, frame: dict[str, Any], *, sender_id: int | None, admin: bool
    ) -> None:
        """A message for one connection, wherever it is connected. The node holding it
        delivers only if the sender owns that connection, is an admin, or is the server."""
        envelope = {"client_id": client_id, "sender_id": sender_id, "admin": admin, "frame": frame}
        await self.redis.publish(self.direct_channel, orjson.dumps(envelope))

    # -- fan-out -----------------------------------------------------------------------------

    def _on_bus(self, bus_channel: str, data: bytes) -> None:
        if bus_channel.startswith(self._bus_prefix):
            self._on_channel_message(bus_channel[len(self._bus_prefix) :], data)
        elif bus_channel == self.revocation_channel:
            self._on_revocation(orjson.loads(data))
        elif bus_channel == self.direct_channel:
            envelope = orjson.loads(data)
            connection = self.connections.get(envelope["client_id"])
            sender = envelope["sender_id"]
            if connection is not None and (
                envelope["admin"] or sender is None or sender == connection.user_id
            ):
                connection.send(orjson.dumps(envelope["frame"]))

    def _on_channel_message(self, channel: str, data: bytes) -> None:
        subscribers = self._subscribers.get(channel)
        if not subscribers:
            return
        kind = data[:1]
        first = data.index(b"\n")
        second = data.index(b"\n", first + 1)
        frame = data[second + 1 :]
        if kind != b"p":  # join/leave or binary: no offset, not in history
            event = (
                Delivery(frame, event="binary", binary=True)
                if kind == b"b"
                else Delivery(frame, event=orjson.loads(frame)["type"])  # join or leave
            )
            for connection, subscription in subscribers.items():
                if subscription.buffer is None:
                    connection.deliver(event)
            return
        cursor = data[first + 1 : second].decode()
        epoch, _, offset_text = cursor.partition(":")
        offset = int(offset_text)
        delivery = Delivery(frame, event="publication", cursor=cursor)
        deliver_one = self._deliver_one
        for connection, subscription in subscribers.items():
            deliver_one(connection, subscription, epoch, offset, delivery)
        if len(subscribers) >= BUSY_FLUSH:
            self._fanout = True

    def _deliver_one(
        self,
        connection: Connection,
        subscription: Subscription,
        epoch: str,
        offset: int,
        delivery: Delivery,
    ) -> None:
        if subscription.buffer is not None:  # recovering: hold back, in order
            subscription.buffer.append((epoch, offset, delivery))
            return
        if epoch == subscription.epoch and offset <= subscription.offset:
            return  # already given (from history, or a duplicate)
        subscription.epoch = epoch
        subscription.offset = offset
        self.delivered += 1
        connection.deliver(delivery)

    def _on_revocation(self, event: dict[str, Any]) -> None:
        """Close what the event names: given sessions, given API keys, or (neither given)
        every connection of the user."""
        sessions = set(event.get("session_ids") or ())
        keys = set(event.get("api_key_ids") or ())
        user_connections = self._by_user.get(int(event.get("user_id", 0)), set())
        for connection in list(user_connections):
            session = connection.principal.session_id
            key = connection.principal.api_key_id
            everything = not sessions and not keys
            if (
                everything
                or (session is not None and str(session) in sessions)
                or (key is not None and str(key) in keys)
            ):
                connection.close_soon(
                    Close.SESSION_REVOKED, f"session revoked: {event.get('reason')}"
                )

    def _resync(self) -> None:
        """After the bus reconnected: give every subscriber what it missed meanwhile."""
        self._spawn(self._recover_all())

    async def _recover_all(self) -> None:
        for name, subscribers in list(self._subscribers.items()):
            positions = {(s.epoch, s.offset) for s in subscribers.values() if s.buffer is None}
            for epoch, offset in positions:
                try:
                    recovery = await self.history.recover(name, Position(epoch, offset))
                except (RedisError, OSError):
                    return
                for connection, subscription in list(subscribers.items()):
                    if (subscription.epoch, subscription.offset) != (epoch, offset):
                        continue
                    if not recovery.recovered:
                        connection.send(
                            orjson.dumps(
                                {"type": "gap", "channel": name, "cursor": recovery.position.cursor}
                            ),
                            event="gap",
                        )
                        subscription.epoch = recovery.position.epoch
                        subscription.offset = recovery.position.offset
                        continue
                    for frame in recovery.frames:
                        cursor = orjson.loads(frame)["cursor"]
                        e, _, o = cursor.partition(":")
                        self._deliver_one(
                            connection,
                            subscription,
                            e,
                            int(o),
                            Delivery(frame, event="publication", cursor=cursor),
                        )

    # -- upkeep and stats --------------------------------------------------------------------

    async def _maintain(self) -> None:
        """Report stats every few seconds; renew presence leases every PRESENCE_TTL/3."""
        renew_every = self.settings.PRESENCE_TTL / 3
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(min(STATS_INTERVAL, renew_every))
            try:
                if time.monotonic() - renewed >= renew_every:
                    renewed = time.monotonic()
                    await self.presence.renew(
                        {
                            name: [connection.client_id for connection in subscribers]
                            for name, subscribers in list(self._subscribers.items())
                            if self.channels.parse(name).namespace.presence
                        }
                    )
                await self.redis.hset(self._nodes_key, self.node_id, orjson.dumps(self.stats()))
                await self.redis.expire(self._nodes_key, int(STATS_INTERVAL * 6))
            except (RedisError, OSError) as error:
                log.debug("hub upkeep skipped: %s", error)

    def stats(self) -> dict[str, Any]:
        queues = [connection.queued for connection in self.connections.values()]
        kinds: dict[str, int] = {}
        for connection in self.connections.values():
            kinds[connection.kind] = kinds.get(connection.kind, 0) + 1
        return {
            "node": self.node_id,
            "at": time.time(),
            "connections": len(self.connections),
            "by_transport": kinds,
            "users": len(self._by_user),
            "channels": len(self._subscribers),
            "queued_messages": sum(queues),
            "max_queue": max(queues, default=0),
            "published": self.published,
            "delivered": self.delivered,
            "uptime_seconds": round(time.time() - self.started_at, 1),
        }

    async def cluster_stats(self) -> list[dict[str, Any]]:
        """Every live node's latest stats (this node's are current)."""
        raw = await self.redis.hgetall(self._nodes_key)
        nodes = {_text(key): orjson.loads(value) for key, value in raw.items()}
        nodes[self.node_id] = self.stats()
        fresh = time.time() - STATS_INTERVAL * 3
        return sorted((n for n in nodes.values() if n["at"] >= fresh), key=lambda n: n["node"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


hub_key: web.AppKey[Hub] = web.AppKey("hub", Hub)
