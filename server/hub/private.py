"""Private channels' members, as the hub reads them: PostgreSQL holds the record
(storage/private_channels.py); Redis caches each answer, so that a subscribe costs one
round trip.

Cache: one hash per channel, `<prefix>:private:{<channel>}:answers`, field `<user id>` =
"1" (a member) or "0" (not); the hash lives at most CACHE_TTL seconds from its first
answer. A change to one member bumps `...:version` and deletes that member's field; creating
or deleting the channel bumps the version and deletes the whole hash, so that no answer
about an earlier channel of the same name can apply to a new one. An answer read from
PostgreSQL is cached only if the version is still the one seen before reading (one Lua
script), so a lookup that raced a change can never cache the old answer. All keys share the
channel as hash tag (one slot on a Redis Cluster, with the channel's history keys).

Removals are announced on `<prefix>:private:removals`, one event per change:
`{"channel", "user_ids": [...], "reason"}`, or `{"channel", "all": true, "reason"}` when the
channel was deleted. Every node ends the live "member" subscriptions it names
(Subscriptions.on_removed), and looks again at every member's subscription after its bus
reconnected and every RECHECK_INTERVAL seconds (Subscriptions.recheck_members), in case it
missed an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from storage import private_channels
from storage.db import Pool, connect
from storage.redis import publish

CACHE_TTL = 300  # seconds a channel's cached answers live (a change replaces them at once)
VERSION_TTL = 86400
RECHECK_INTERVAL = 120  # seconds between two checks of this node's member subscriptions

# KEYS: version, answers. ARGV: the version seen before reading PostgreSQL, the user id,
# the answer, ttl. EXPIRE NX (Redis 7): the hash's age counts from its first answer.
STORE_IF_UNCHANGED = """
if (redis.call('GET', KEYS[1]) or '') == ARGV[1] then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4], 'NX')
end
return 0
"""


class Membership:
    def __init__(self, redis: Redis, db: Pool | None, prefix: str) -> None:
        self.redis = redis
        self.db = db
        self.prefix = prefix
        self.removals = f"{prefix}:private:removals"  # a control channel of the bus

    def keys(self, channel: str) -> tuple[str, str]:
        """The channel's version key and its hash of cached answers."""
        base = f"{self.prefix}:private:{{{channel}}}"
        return f"{base}:version", f"{base}:answers"

    async def is_member(self, channel: str, user_id: int) -> bool:
        version_key, answers_key = self.keys(channel)
        cached = await self.redis.hget(answers_key, str(user_id))
        if cached is not None:
            return bool(cached == b"1")
        seen = await self.redis.get(version_key)
        if self.db is None:  # a hub without a database (never in the server): nobody
            return False
        async with connect(self.db) as conn:
            member = await private_channels.role_of(conn, channel, user_id) is not None
        script = cast(Any, self.redis).eval(
            STORE_IF_UNCHANGED,
            2,
            version_key,
            answers_key,
            seen.decode() if isinstance(seen, bytes) else (seen or ""),
            str(user_id),
            "1" if member else "0",
            CACHE_TTL,
        )
        await script
        return member

    async def changed(self, channel: str, user_ids: Sequence[int]) -> None:
        """After a change to these users' membership was committed: forget their answers."""
        version_key, answers_key = self.keys(channel)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(version_key)
            pipe.expire(version_key, VERSION_TTL)
            if user_ids:
                pipe.hdel(answers_key, *(str(user_id) for user_id in user_ids))
            await pipe.execute()

    async def reset(self, channel: str, also_delete: Sequence[str] = ()) -> None:
        """The channel was created or deleted: forget every answer about it (and delete
        `also_delete`, keys of the same hash tag: its history), in one round trip."""
        version_key, answers_key = self.keys(channel)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(version_key)
            pipe.expire(version_key, VERSION_TTL)
            pipe.delete(answers_key, *also_delete)
            await pipe.execute()

    async def removed(self, channel: str, user_ids: Sequence[int], reason: str) -> None:
        """After a removal was committed: forget the cached answers, and tell every node to
        end the users' subscriptions to the channel."""
        await self.changed(channel, user_ids)
        await self.announce(channel, {"user_ids": list(user_ids)}, reason)

    async def announce(self, channel: str, whom: dict[str, Any], reason: str) -> None:
        """One removal event: `whom` is {"user_ids": [...]} or {"all": True}."""
        event = {"channel": channel, **whom, "reason": reason}
        await publish(self.redis, self.removals, orjson.dumps(event))
