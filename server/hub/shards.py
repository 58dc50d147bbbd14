"""Sharded pub/sub on a Redis Cluster for the bus: SSUBSCRIBE each channel on the master that
owns its hash slot, one connection per such master, so no node carries every channel.

It offers the bus what a plain redis-py PubSub does (subscribe, unsubscribe, get_message,
subscribed, aclose), with the sharded message types (`smessage`, `ssubscribe`).

redis-py's own ClusterPubSub moves shard channels after a failover by itself, silently: a
publication made on the new master before the move reaches nobody and nobody hears of it. The
bus must know, to catch its subscribers up from history (fanout.py), so here a lost node is
an error: when a node's connection fails, or a node unsubscribes a channel we still want (its
slot moved), `get_message` raises ConnectionError once; the next calls refresh the slot map
and subscribe the orphaned channels on their owners now, raising again until all are placed.
The bus treats that exactly like a lost single Redis (bus.py), and the confirmations that
follow end its outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

READ_TIMEOUT = 1.0  # seconds a node's reader waits for a message before looking again


@dataclass
class _Lost:
    node: str
    error: BaseException


class _Shard:
    """One master's connection and the task that reads it into the inbox."""

    def __init__(self, client: Redis, inbox: asyncio.Queue[dict[str, Any] | _Lost]) -> None:
        self.client = client
        self.pubsub: PubSub = client.pubsub()
        self.reader: asyncio.Task[None] | None = None
        self._inbox = inbox

    def start(self, name: str) -> None:
        if self.reader is None:
            self.reader = asyncio.ensure_future(self._read(name))

    async def _read(self, name: str) -> None:
        try:
            while True:
                message = await self.pubsub.get_message(timeout=READ_TIMEOUT)
                if message is not None:
                    self._inbox.put_nowait(message)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the node is gone (or answered nonsense): say so once
            self._inbox.put_nowait(_Lost(name, error))

    async def close(self) -> None:
        # The socket first: a reader cancelled inside a read makes redis-py drop the
        # connection without closing its transport (a ResourceWarning, sometimes).
        with contextlib.suppress(RedisError, OSError):
            await self.pubsub.aclose()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        with contextlib.suppress(RedisError, OSError):
            await self.client.aclose()


class ShardedPubSub:
    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster
        self._wanted: set[str] = set()
        self._owner: dict[str, str] = {}  # channel -> name of the node it is subscribed on
        self._orphans: set[str] = set()  # wanted, but on no node now (placed on the next read)
        self._leaving: dict[str, int] = {}  # channel -> SUNSUBSCRIBEs not confirmed yet
        self._shards: dict[str, _Shard] = {}
        self._inbox: asyncio.Queue[dict[str, Any] | _Lost] = asyncio.Queue()

    @property
    def subscribed(self) -> bool:
        return bool(self._wanted)

    def nodes(self) -> dict[str, list[str]]:
        """Node name -> the channels subscribed there (for tests and stats)."""
        placed: dict[str, list[str]] = {}
        for channel, node in self._owner.items():
            placed.setdefault(node, []).append(channel)
        return placed

    async def subscribe(self, *channels: str) -> None:
        self._wanted.update(channels)
        await self._place([c for c in channels if c not in self._owner])

    async def unsubscribe(self, *channels: str) -> None:
        for channel in channels:
            self._wanted.discard(channel)
            self._orphans.discard(channel)
            node = self._owner.pop(channel, None)
            shard = self._shards.get(node) if node else None
            if shard is not None:
                self._leaving[channel] = self._leaving.get(channel, 0) + 1
                await shard.pubsub.sunsubscribe(channel)

    async def get_message(self, timeout: float = 0.0) -> dict[str, Any] | None:
        if self._orphans:
            await self._cluster.nodes_manager.initialize()  # where the slots are now
            await self._place(list(self._orphans))
        try:
            if timeout > 0:
                item = await asyncio.wait_for(self._inbox.get(), timeout)
            else:
                item = self._inbox.get_nowait()
        except (TimeoutError, asyncio.QueueEmpty):
            return None
        if isinstance(item, _Lost):
            await self._drop(item.node)
            raise ConnectionError(f"lost the Redis Cluster node {item.node}: {item.error}")
        if item["type"] == "sunsubscribe":
            return await self._unsubscribed(item)
        return item

    async def _unsubscribed(self, message: dict[str, Any]) -> dict[str, Any] | None:
        channel = _text(message["channel"])
        left = self._leaving.get(channel, 0)
        if left > 0:  # the confirmation of our own SUNSUBSCRIBE
            if left == 1:
                del self._leaving[channel]
            else:
                self._leaving[channel] = left - 1
            return message
        # The node gave the channel's slot away (resharding, or it became a replica).
        self._owner.pop(channel, None)
        if channel in self._wanted:
            self._orphans.add(channel)
        raise ConnectionError(f"the Redis Cluster moved the slot of {channel}")

    async def _place(self, channels: list[str]) -> None:
        """Subscribe each channel on the master that owns its slot. Until then (or when this
        fails part way) a channel is an orphan, placed again by the next get_message."""
        if not channels:
            return
        self._orphans.update(c for c in channels if c in self._wanted)
        if self._cluster._initialize:  # first use: learn the slot map
            await self._cluster.initialize()
        for channel in channels:
            if channel not in self._wanted:
                continue  # unsubscribed meanwhile
            node = self._cluster.get_node_from_key(channel)
            if node is None:
                raise ConnectionError(f"no Redis Cluster node serves {channel}")
            shard = self._shards.get(node.name)
            if shard is None:
                shard = self._shards[node.name] = _Shard(_node_client(node), self._inbox)
            await shard.pubsub.ssubscribe(channel)
            shard.start(node.name)
            if channel in self._wanted:
                self._owner[channel] = node.name
                self._orphans.discard(channel)
            else:  # unsubscribed while SSUBSCRIBE was on its way: leave at once
                self._leaving[channel] = self._leaving.get(channel, 0) + 1
                await shard.pubsub.sunsubscribe(channel)

    async def _drop(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        for channel, node in list(self._owner.items()):
            if node == name:
                del self._owner[channel]
                if channel in self._wanted:
                    self._orphans.add(channel)
        if shard is not None:
            await shard.close()

    async def aclose(self) -> None:
        shards, self._shards = list(self._shards.values()), {}
        self._owner.clear()
        self._orphans.clear()
        await asyncio.gather(*(shard.close() for shard in shards))


def _node_client(node: Any) -> Redis:
    """A plain client for one cluster node, with the cluster client's credentials. It does
    not retry by itself: a failure must reach the bus at once (module docstring)."""
    kwargs = node.connection_kwargs
    return Redis(
        host=node.host,
        port=node.port,
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        ssl=kwargs.get("connection_class") is SSLConnection,
        socket_connect_timeout=kwargs.get("socket_connect_timeout", 3),
        # A master that vanishes without a reset (host down, network split) must still be
        # noticed: keepalive, and a PING while the subscription is quiet (as the single
        # Redis client does), whose failure reaches the bus as a lost shard.
        socket_keepalive=True,
        health_check_interval=10,
        client_name=kwargs.get("client_name"),
        retry=Retry(NoBackoff(), 0),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
