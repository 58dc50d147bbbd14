"""AuthCache: the Redis cache of authentication state per session (revoked, expiry), per
user (active, role) and per API key, and the Redis key names of every auth record. The
Authenticator is this cache; its parts (standing, API keys, tickets, revocations) are
given it and read and fill it through `cached` and `_fill`.

The lookups of every request being authenticated at one moment go out in one MGET; fills
use SET NX, so a fill racing with a revocation can never overwrite the revocation marker.
Redis being down reads as a miss (the database answers) and skips the fill."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from storage.coalescer import Coalescer
from storage.redis import mget

CACHE_TTL = 60  # seconds a cached session/user/key state may be served


class AuthCache:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.session_key = f"{prefix}:auth:session:{{}}".format
        self.user_key = f"{prefix}:auth:user:{{}}".format
        self.apikey_key = f"{prefix}:auth:apikey:{{}}".format
        self.ticket_key = f"{prefix}:auth:ticket:{{}}".format
        self.revocation_channel = f"{prefix}:auth:revocations"
        self._lookups: Coalescer[tuple[str, ...], list[Any]] = Coalescer(
            self._mget, name="auth-cache-lookups"
        )

    async def cached(self, *keys: str) -> list[dict[str, Any] | None]:
        """The cached states (None where missing, or everywhere when Redis is down)."""
        values = await self._lookups.submit(keys)
        return [None if value is None else orjson.loads(value) for value in values]

    async def _mget(self, lookups: list[tuple[str, ...]]) -> list[list[Any]]:
        """The lookups of every request being authenticated now, in one MGET. Each one is
        sent after its request arrived, so a revocation that came first is always seen."""
        keys = list(dict.fromkeys(key for lookup in lookups for key in lookup))
        try:
            found = dict(zip(keys, await mget(self.redis, keys), strict=True))
        except RedisError:
            found = {}
        return [[found.get(key) for key in lookup] for lookup in lookups]

    async def _fill(self, key: str, value: dict[str, Any]) -> None:
        """Cache `value` unless `key` holds something already (a revocation marker wins).
        The parts call it on the cache object at call time, never a copy of the bound
        method, so a test can stand in for it on the instance to stage a race."""
        with contextlib.suppress(RedisError):
            await self.redis.set(key, orjson.dumps(value), ex=CACHE_TTL, nx=True)
