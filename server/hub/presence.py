"""Who is in a channel, across nodes, in Redis.

    {prefix}:presence:{<channel>}:lease  ZSET client_id -> lease expiry (unix ms)
    {prefix}:presence:{<channel>}:info   HASH client_id -> {"user_id", "client_id", ...}

Each node renews the leases of its own clients every PRESENCE_TTL/3 seconds; when a node
dies its members disappear once their leases run out. Readers drop expired members.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from server.hub.protocol import now_ms

RENEW_CHUNK = 500


class PresenceStore:
    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_ms = ttl_seconds * 1000

    def _keys(self, channel: str) -> tuple[str, str]:
        base = f"{self.prefix}:presence:{{{channel}}}"
        return f"{base}:lease", f"{base}:info"

    async def add(self, channel: str, client_id: str, info: dict[str, Any]) -> None:
        lease, details = self._keys(channel)
        expiry = now_ms() + self.ttl_ms
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(lease, {client_id: expiry})
            pipe.hset(details, client_id, orjson.dumps(info))
            pipe.pexpire(lease, self.ttl_ms * 2)
            pipe.pexpire(details, self.ttl_ms * 2)
            await pipe.execute()

    async def remove(self, channel: str, client_id: str) -> None:
        lease, details = self._keys(channel)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(lease, client_id)
            pipe.hdel(details, client_id)
            await pipe.execute()

    async def renew(self, members: dict[str, list[str]]) -> None:
        """Extend the leases this node holds: {channel: [client_id, ...]}. One ZADD per
        channel (in chunks), not one per member, and the loop gets a turn between chunks,
        so renewing thousands of members never stalls fan-out."""
        expiry = now_ms() + self.ttl_ms
        for channel, client_ids in members.items():
            lease, details = self._keys(channel)
            for start in range(0, len(client_ids), RENEW_CHUNK):
                chunk = client_ids[start : start + RENEW_CHUNK]
                await self.redis.zadd(lease, dict.fromkeys(chunk, expiry), xx=True)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.pexpire(lease, self.ttl_ms * 2)
                pipe.pexpire(details, self.ttl_ms * 2)
                await pipe.execute()

    async def members(self, channel: str) -> list[dict[str, Any]]:
        lease, details = self._keys(channel)
        now = now_ms()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrangebyscore(lease, "-inf", now)
            pipe.zremrangebyscore(lease, "-inf", now)
            pipe.zrangebyscore(lease, now, "+inf")
            expired, _, live = await pipe.execute()
        if expired:
            await self.redis.hdel(details, *expired)
        if not live:
            return []
        infos = await self.redis.hmget(details, live)
        return [orjson.loads(info) for info in infos if info is not None]
