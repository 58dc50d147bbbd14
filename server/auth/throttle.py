"""Failed-login throttling in Redis, per account and per client address.

Only failures count, in a fixed window per key (INCR, EXPIRE NX). Once a key reaches its
limit, further attempts are refused with 429 and Retry-After before any password is
checked. The caller names the account: the user id when the login exists (so email and
username share one counter), the login as typed otherwise (so unknown accounts are
throttled exactly like real ones). If Redis is down, logins are not throttled (and this is logged):
locking everyone out would be worse.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.kernel.errors import TooManyRequests
from server.kernel.settings import Settings

log = logging.getLogger(__name__)


class LoginThrottle:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.redis = redis
        self.window = settings.LOGIN_THROTTLE_WINDOW
        self.limits = {
            "account": settings.LOGIN_MAX_FAILURES_PER_ACCOUNT,
            "address": settings.LOGIN_MAX_FAILURES_PER_ADDRESS,
        }
        self.prefix = f"{settings.REDIS_PREFIX}:auth:login-failures"

    def _keys(self, account_key: str, address: str) -> dict[str, str]:
        account = hashlib.sha256(account_key.strip().lower().encode()).hexdigest()[:32]
        return {
            "account": f"{self.prefix}:account:{account}",
            "address": f"{self.prefix}:address:{address}",
        }

    async def check(self, login: str, address: str) -> None:
        """Raise 429 when the account or the address is over its limit."""
        keys = self._keys(login, address)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys.values():
                    pipe.get(key)
                    pipe.ttl(key)
                results = await pipe.execute()
        except RedisError:
            log.warning("Redis unavailable: login throttling is off")
            return
        for index, kind in enumerate(keys):
            count, ttl = results[2 * index], results[2 * index + 1]
            if count is not None and int(count) >= self.limits[kind]:
                raise TooManyRequests(
                    f"too many failed logins for this {kind}; try again later",
                    retry_after=ttl if ttl and ttl > 0 else self.window,
                )

    async def failed(self, login: str, address: str) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in self._keys(login, address).values():
                    pipe.incr(key)
                    pipe.expire(key, self.window, nx=True)
                await pipe.execute()
        except RedisError:
            log.warning("Redis unavailable: failed login not counted")

    async def succeeded(self, login: str, address: str) -> None:
        with contextlib.suppress(RedisError):
            await self.redis.delete(self._keys(login, address)["account"])


login_throttle_key: web.AppKey[LoginThrottle] = web.AppKey("login_throttle", LoginThrottle)
