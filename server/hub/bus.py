"""The node's Redis pub/sub connection.

A node subscribes only to the channels it has local subscribers for (`acquire` on the first,
`release` after the last), plus the control channels given at start (revocations, direct
messages). `acquire` returns once Redis confirmed the subscription, so history read
afterwards cannot miss a publication.

The reader drains every message already buffered before yielding, so a burst of
publications reaches the connections' queues together and is written with one syscall per
connection.

When the Redis connection drops, the bus retries every RETRY_DELAY seconds (no growing
backoff: it is one connection, and publications acknowledged while it is down reach nobody
until it is back), so it resubscribes within a fraction of a second of Redis accepting
connections (the client storage/redis.py makes retries nothing itself: every failure
reaches this loop at once). redis-py resubscribes every channel on reconnect; the first
confirmation after an outage calls `on_reconnect` before any message is read, so the hub can
hold live publications back and catch every subscriber up from history (fanout.py). One
line is logged when the outage starts, one when it ends.

On a Redis Cluster (storage/redis.py) the bus uses sharded pub/sub instead (shards.py:
SSUBSCRIBE on the master owning each channel's slot, so no node carries every channel's
traffic); a lost master or a moved slot is an outage of the same kind, ended by the
confirmations of the channels placed again on their owners now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from server.hub.shards import ShardedPubSub
from storage.redis import is_cluster

log = logging.getLogger(__name__)

RETRY_DELAY = 0.25  # seconds between attempts to reach Redis again

OnMessage = Callable[[str, bytes], None]


class Bus:
    def __init__(
        self,
        redis: Redis,
        on_message: OnMessage,
        on_reconnect: Callable[[], None],
        control_channels: list[str],
    ) -> None:
        self._pubsub: Any = (
            ShardedPubSub(cast(RedisCluster, redis)) if is_cluster(redis) else redis.pubsub()
        )
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self._control = control_channels
        self._counts: dict[str, int] = {}
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._lost = False
        self._lost_at = 0.0
        self.reconnects = 0
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()

    @property
    def channels(self) -> int:
        return len(self._counts)

    async def acquire(self, channel: str, timeout: float = 5.0) -> None:
        """Count a local subscriber; subscribe in Redis for the first one and wait for the
        confirmation."""
        self._counts[channel] = self._counts.get(channel, 0) + 1
        if self._counts[channel] == 1:
            self._confirmations[channel] = asyncio.get_running_loop().create_future()
            try:
                await self._pubsub.subscribe(channel)
            except (RedisError, OSError):
                self.release(channel)
                raise
        waiter = self._confirmations.get(channel)
        if waiter is not None:
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except TimeoutError:
                self.release(channel)
                raise

    def release(self, channel: str) -> None:
        count = self._counts.get(channel, 0) - 1
        if count > 0:
            self._counts[channel] = count
            return
        self._counts.pop(channel, None)
        waiter = self._confirmations.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.cancel()
        task = asyncio.ensure_future(self._unsubscribe(channel))
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()

    async def _unsubscribe(self, channel: str) -> None:
        if channel not in self._counts:  # nobody subscribed again meanwhile
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    async def run(self) -> None:
        """Read until cancelled; survives Redis outages."""
        while not self.is_closing():
            try:
                if not self._pubsub.subscribed:
                    await self._pubsub.subscribe(*self._control)
                message = await self._pubsub.get_message(timeout=1.0)
                while message is not None:
                    self._handle(message)
                    message = await self._pubsub.get_message(timeout=0)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.is_closing():  # redis-py may turn our cancellation into any error
                    return
                if not isinstance(error, (RedisError, OSError)):
                    log.exception("realtime bus: unexpected error; reconnecting")
                if not self._lost:
                    self._lost, self._lost_at = True, time.monotonic()
                    log.warning(
                        "realtime bus lost Redis (%s); retrying every %.2f s", error, RETRY_DELAY
                    )
                self.connected.clear()
                await asyncio.sleep(RETRY_DELAY)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"]
        name = channel.decode() if isinstance(channel, bytes) else channel
        if kind in ("message", "smessage"):
            try:
                self._on_message(name, message["data"])
            except Exception:
                log.exception("realtime bus: handling a message on %s failed", name)
        elif kind in ("subscribe", "ssubscribe"):
            if self._lost:  # the first confirmation after an outage: nothing read since
                self._lost = False
                self.reconnects += 1
                log.warning(
                    "realtime bus reconnected to Redis after %.1f s; catching subscribers up",
                    time.monotonic() - self._lost_at,
                )
                self._on_reconnect()
                self.connected.set()  # on a cluster the first channel may never have left
            waiter = self._confirmations.pop(name, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if name == self._control[0]:
                self.connected.set()

    def is_closing(self) -> bool:
        return self._closing

    async def close(self) -> None:
        """Stop reading (call before cancelling run(): redis-py can swallow a cancellation
        that arrives inside get_message, see redis/redis-py#2028 and #2551)."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()
