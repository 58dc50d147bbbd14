"""The node's Redis pub/sub connection.

A node subscribes only to the channels it has local subscribers for (`acquire` on the first,
`release` after the last), plus the control channels given at start (revocations, direct
messages). `acquire` returns once Redis confirmed the subscription, so history read
afterwards cannot miss a publication.

The reader drains every message already buffered before yielding, so a burst of
publications reaches the connections' queues together and is written with one syscall per
connection. When the Redis connection drops, redis-py resubscribes on reconnect and
`on_reconnect` lets the hub fill the gap from history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

OnMessage = Callable[[str, bytes], None]


class Bus:
    def __init__(
        self,
        redis: Redis,
        on_message: OnMessage,
        on_reconnect: Callable[[], None],
        control_channels: list[str],
    ) -> None:
        self._pubsub = redis.pubsub()
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self._control = control_channels
        self._counts: dict[str, int] = {}
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._lost = False
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
        delay = 0.2
        while not self.is_closing():
            try:
                if not self._pubsub.subscribed:
                    await self._pubsub.subscribe(*self._control)
                message = await self._pubsub.get_message(timeout=1.0)
                while message is not None:
                    self._handle(message)
                    message = await self._pubsub.get_message(timeout=0)
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.is_closing():  # redis-py may turn our cancellation into any error
                    return
                if not isinstance(error, (RedisError, OSError)):
                    log.exception("realtime bus: unexpected error; reconnecting")
                if not self._lost:
                    log.warning("realtime bus lost Redis (%s); reconnecting", error)
                self._lost = True
                self.connected.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"]
        name = channel.decode() if isinstance(channel, bytes) else channel
        if kind == "message":
            try:
                self._on_message(name, message["data"])
            except Exception:
                log.exception("realtime bus: handling a message on %s failed", name)
        elif kind == "subscribe":
            waiter = self._confirmations.pop(name, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if name == self._control[0]:
                self.connected.set()
                if self._lost:
                    self._lost = False
                    log.info("realtime bus reconnected to Redis")
                    self._on_reconnect()

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
