"""Throttling of the auth endpoints in Redis: failed logins, and registrations per address.

Failed logins are counted three ways, so that an attacker slows down without locking the
owner out:

- per (account, address) pair: after LOGIN_FREE_FAILURES_PER_PAIR failures, each further one
  makes that pair wait (429 + Retry-After), the wait doubling from LOGIN_PAIR_FIRST_DELAY up
  to LOGIN_PAIR_MAX_DELAY; a success from that address clears the pair;
- per address, over every account (LOGIN_MAX_FAILURES_PER_ADDRESS within the window);
- per account, over every address (LOGIN_ACCOUNT_FAILURES_KNOWN_ONLY within the window):
  past it, only the account's known addresses (those it logged in from successfully within
  LOGIN_KNOWN_ADDRESS_TTL) may still try. Failures never lock out a known address, and one
  address alone cannot reach that count (the pair and address limits stop it long before).

Attempts over a limit are refused before any password is checked. The caller names the
account: the user id when the login exists (so email and username share one counter), the
login as typed otherwise, so unknown accounts are throttled exactly like real ones (an
unknown account never has known addresses, nor does a real one for an attacker's address).
Sessions are never affected: /auth/refresh does not pass through here. If Redis is down,
nothing is throttled (and this is logged): locking everyone out would be worse.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.kernel.errors import TooManyRequests
from server.kernel.settings import Settings

log = logging.getLogger(__name__)

KNOWN_ADDRESSES_KEPT = 50  # per account: the most recent ones; a bound on the set's size


def _seconds(milliseconds: int) -> int:
    return max(1, math.ceil(milliseconds / 1000))


class LoginThrottle:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.redis = redis
        self.window = settings.LOGIN_THROTTLE_WINDOW
        self.address_limit = settings.LOGIN_MAX_FAILURES_PER_ADDRESS
        self.account_limit = settings.LOGIN_ACCOUNT_FAILURES_KNOWN_ONLY
        self.free_failures = settings.LOGIN_FREE_FAILURES_PER_PAIR
        self.first_delay = settings.LOGIN_PAIR_FIRST_DELAY
        self.max_delay = settings.LOGIN_PAIR_MAX_DELAY
        self.known_ttl = settings.LOGIN_KNOWN_ADDRESS_TTL
        self.prefix = f"{settings.REDIS_PREFIX}:auth:login"

    def _keys(self, account_key: str, address: str) -> dict[str, str]:
        account = hashlib.sha256(account_key.strip().lower().encode()).hexdigest()[:32]
        return {
            # One hash tag: DEL removes both at once (one slot on a Redis Cluster).
            "pair": f"{self.prefix}:pair:{{{account}:{address}}}",
            "wait": f"{self.prefix}:wait:{{{account}:{address}}}",
            "address": f"{self.prefix}:address:{address}",
            "account": f"{self.prefix}:account:{account}",
            "known": f"{self.prefix}:known:{account}",
        }

    def delay(self, failures: int) -> int:
        """Seconds the pair waits after its `failures`-th failure (0: no wait yet)."""
        extra = failures - self.free_failures
        if extra <= 0:
            return 0
        doubled: int = self.first_delay * 2 ** min(extra - 1, 32)
        return min(self.max_delay, doubled)

    async def check(self, account_key: str, address: str) -> None:
        """Raise 429 when this pair must wait, the address is over its limit, or the
        account is over its limit and this is not one of its known addresses."""
        keys = self._keys(account_key, address)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.pttl(keys["wait"])
                pipe.get(keys["address"])
                pipe.ttl(keys["address"])
                pipe.get(keys["account"])
                pipe.ttl(keys["account"])
                pipe.zscore(keys["known"], address)
                results = await pipe.execute()
            wait, by_address, address_ttl, by_account, account_ttl, known_at = results
        except RedisError:
            log.warning("Redis unavailable: login throttling is off")
            return
        if wait is not None and wait > 0:
            raise TooManyRequests(
                "too many failed logins for this account from this address; wait before "
                "trying again",
                retry_after=_seconds(wait),
            )
        if by_address is not None and int(by_address) >= self.address_limit:
            raise TooManyRequests(
                "too many failed logins from this address; try again later",
                retry_after=address_ttl if address_ttl and address_ttl > 0 else self.window,
            )
        known = known_at is not None and known_at >= time.time() - self.known_ttl
        if by_account is not None and int(by_account) >= self.account_limit and not known:
            raise TooManyRequests(
                "too many failed logins for this account; try again later, or from an "
                "address you have signed in from before",
                retry_after=account_ttl if account_ttl and account_ttl > 0 else self.window,
            )

    async def failed(self, account_key: str, address: str) -> None:
        keys = self._keys(account_key, address)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(keys["pair"])
                pipe.expire(keys["pair"], self.window)
                for kind in ("address", "account"):
                    pipe.incr(keys[kind])
                    pipe.expire(keys[kind], self.window, nx=True)
                failures = (await pipe.execute())[0]
            delay = self.delay(int(failures))
            async with self.redis.pipeline(transaction=False) as pipe:
                # The pair's count lives on for a window after its wait ends: waiting out one
                # delay does not start the pair over with free failures.
                pipe.expire(keys["pair"], self.window + delay)
                if delay:
                    pipe.set(keys["wait"], b"1", ex=delay)
                await pipe.execute()
        except RedisError:
            log.warning("Redis unavailable: failed login not counted")

    async def succeeded(self, account_key: str, address: str) -> None:
        """The pair starts over, and the address becomes (stays) one the account knows.
        The account's own count is left to expire: an owner signing in must not hand a
        distributed attacker a fresh allowance."""
        keys = self._keys(account_key, address)
        now = time.time()
        with contextlib.suppress(RedisError):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.delete(keys["pair"], keys["wait"])
                pipe.zadd(keys["known"], {address: now})
                pipe.zremrangebyscore(keys["known"], "-inf", now - self.known_ttl)
                pipe.zremrangebyrank(keys["known"], 0, -KNOWN_ADDRESSES_KEPT - 1)
                pipe.expire(keys["known"], self.known_ttl)
                await pipe.execute()


class RegistrationThrottle:
    """Registrations per client address in a fixed window (every attempt that reaches the
    account checks counts, accepted or not). Registering and then logging in tells whether
    an email was free; this bounds how fast anyone can ask."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.redis = redis
        self.window = settings.REGISTER_THROTTLE_WINDOW
        self.limit = settings.REGISTER_MAX_PER_ADDRESS
        self.prefix = f"{settings.REDIS_PREFIX}:auth:registrations"

    async def attempt(self, address: str) -> None:
        """Count one registration from `address`; 429 when it is over the limit."""
        key = f"{self.prefix}:{address}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
                pipe.ttl(key)
                count, _, ttl = await pipe.execute()
        except RedisError:
            log.warning("Redis unavailable: registration throttling is off")
            return
        if int(count) > self.limit:
            raise TooManyRequests(
                "too many registrations from this address; try again later",
                retry_after=ttl if ttl and ttl > 0 else self.window,
            )


login_throttle_key: web.AppKey[LoginThrottle] = web.AppKey("login_throttle", LoginThrottle)
registration_throttle_key: web.AppKey[RegistrationThrottle] = web.AppKey(
    "registration_throttle", RegistrationThrottle
)
