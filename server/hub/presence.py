"""Who is in a channel, across nodes, in Redis.

    {prefix}:presence:{<channel>}:lease  ZSET client_id -> lease expiry (unix ms)
    {prefix}:presence:{<channel>}:info   HASH client_id -> {"user_id", "client_id", ...}

Each node renews the leases of its own clients every PRESENCE_TTL/3 seconds; when a node
dies its members disappear once their leases run out. Readers drop expired members.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from redis.asyncio import Redis


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
        expiry = int(time.time() * 1000) + self.ttl_ms
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

    async def renew(self, entries: list[tuple[str, str]]) -> None:
        """Extend the leases of (channel, client_id) pairs held by this node."""
        if not entries:
            return
        expiry = int(time.time() * 1000) + self.ttl_ms
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel, client_id in entries:
                lease, details = self._keys(channel)
                pipe.zadd(lease, {client_id: expiry}, xx=True)
                pipe.pexpire(lease, self.ttl_ms * 2)
                pipe.pexpire(details, self.ttl_ms * 2)
            await pipe.execute()

    async def members(self, channel: str) -> list[dict[str, Any]]:
        lease, details = self._keys(channel)
        now = int(time.time() * 1000)
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
