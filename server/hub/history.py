"""Channel history in Redis: publishing through the wire's script, positions, recovery.

Per channel three keys share a hash tag (so they live together on a Redis Cluster, with the
channel's bus, wire.py):

    {prefix}:ch:{<channel>}:offset   INCR counter: the offset of the last publication
    {prefix}:ch:{<channel>}:epoch    random id of this history's lifetime
    {prefix}:ch:{<channel>}:stream   XADD entries with id 0-<offset>, trimmed to the size

The size is HISTORY_SIZE, or the channel's namespace's own `history_size` (the built-in
`user` namespace keeps more: server/kernel/namespaces.py).

What a publication looks like in the stream and on the bus, and the script that writes it,
are in wire.py. Entries live HISTORY_TTL seconds; when the keys expire the epoch changes.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from server.hub import wire
from server.hub.delivery import Delivery
from server.hub.position import Position
from server.hub.protocol import now_ms
from storage.redis import publish_command

POSITION_SCRIPT = """
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch, 'PX', ARGV[2])
end
local offset = tonumber(redis.call('GET', KEYS[1]) or '0')
return {offset, epoch}
"""

# A publication to make: channel, and its frame before and after the offset, epoch, cursor.
Item = tuple[str, tuple[bytes, bytes]]


@dataclass(frozen=True)
class Recovery:
    recovered: bool
    replay: list[Delivery]  # publications after the cursor, oldest first, cursors attached
    position: Position  # the channel's position now


def new_epoch() -> str:
    return secrets.token_hex(4)


class History:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        size: int,
        ttl_seconds: int,
        sizes: Mapping[str, int] | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.size = size
        self.sizes = dict(sizes or {})  # namespace -> its channels' size, where not `size`
        self.ttl_ms = ttl_seconds * 1000
        self.bus_prefix = wire.bus_prefix(prefix)
        self._publish = redis.register_script(wire.PUBLISH_SCRIPT)
        self._publish_command = publish_command(redis)
        self._position = redis.register_script(POSITION_SCRIPT)

    def keys(self, channel: str) -> list[str]:
        base = f"{self.prefix}:ch:{{{channel}}}"
        return [f"{base}:offset", f"{base}:epoch", f"{base}:stream"]

    def size_of(self, channel: str) -> int:
        """How many publications the channel keeps (by its namespace)."""
        return self.sizes.get(channel.split(":", 1)[0], self.size)

    def bus_channel(self, channel: str) -> str:
        return wire.bus_channel(self.bus_prefix, channel)

    async def publish_many(self, items: list[Item]) -> list[Position | BaseException]:
        """Several publications in one pipelined round trip, run by Redis in this order;
        each gets its position, or the error it met.

        EVALSHA goes into the pipeline as a plain command: a registered script would make
        redis-py ask SCRIPT EXISTS first, a second round trip on every call. If Redis lost
        the script (a restart, SCRIPT FLUSH) nothing ran; it is loaded and the batch sent
        again."""
        now = now_ms()
        results = await self._run_publish(items, now)
        if any(isinstance(result, NoScriptError) for result in results):
            await self.redis.script_load(wire.PUBLISH_SCRIPT)
            again = iter(
                await self._run_publish(
                    [
                        item
                        for item, result in zip(items, results, strict=True)
                        if isinstance(result, NoScriptError)
                    ],
                    now,
                )
            )
            results = [next(again) if isinstance(r, NoScriptError) else r for r in results]
        return [
            result
            if isinstance(result, BaseException)
            else Position(wire.text(result[1]), int(result[0]))
            for result in results
        ]

    async def _run_publish(self, items: list[Item], now: int) -> list[Any]:
        # The epoch a channel starts with if it has none; one random draw serves the whole
        # pipeline (a channel takes it at most once, and channels may share one).
        epoch = new_epoch()
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel, parts in items:
                keys = self.keys(channel)
                args = wire.publish_args(
                    self.size_of(channel),
                    self.ttl_ms,
                    epoch,
                    parts,
                    self.bus_channel(channel),
                    now,
                    self._publish_command,
                )
                pipe.evalsha(self._publish.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    async def position(self, channel: str) -> Position:
        offset, epoch = await self._position(
            keys=self.keys(channel), args=[new_epoch(), self.ttl_ms]
        )
        return Position(wire.text(epoch), int(offset))

    async def recover(self, channel: str, since: Position) -> Recovery:
        """Publications after `since`, or recovered=False when some are gone (history
        trimmed, expired by age, or a new epoch)."""
        now = await self.position(channel)
        if now.epoch != since.epoch or since.offset > now.offset:
            return Recovery(False, [], now)
        if since.offset == now.offset:
            return Recovery(True, [], now)
        if now.offset - since.offset > self.size_of(channel):  # MAXLEN ~ may keep more
            return Recovery(False, [], now)
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await self.redis.xrange(  # type: ignore[assignment]
            self.keys(channel)[2], min=f"(0-{since.offset}", max=f"0-{now.offset}"
        )
        oldest_allowed = now_ms() - self.ttl_ms
        replay: list[Delivery] = []
        expected = since.offset + 1
        for entry_id, fields in entries:
            delivery, published_at = wire.parse_entry(now.epoch, entry_id, fields)
            if delivery.offset != expected or published_at < oldest_allowed:
                return Recovery(False, [], now)
            replay.append(delivery)
            expected += 1
        if expected != now.offset + 1:
            return Recovery(False, [], now)
        return Recovery(True, replay, now)
