"""Revocations: the end of a session, an account or an API key takes effect at once.
Called after the revoking transaction committed, each overwrites the cached state with a
marker (later requests fail at the next lookup, on every node) and announces the event on
`{REDIS_PREFIX}:auth:revocations`, where the realtime hub closes the connections concerned.
With Redis down they are logged, and a state cached before may serve until it expires
(CACHE_TTL)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from redis.exceptions import RedisError

from server.auth.cache import CACHE_TTL, AuthCache
from storage.redis import publish

log = logging.getLogger(__name__)


class Revocations:
    def __init__(self, cache: AuthCache, access_token_ttl: int) -> None:
        self.cache = cache
        # a marker outlives every access token issued before it
        self.marker_ttl = max(access_token_ttl, CACHE_TTL)

    async def sessions_revoked(
        self, session_ids: list[uuid.UUID], user_id: int, reason: str
    ) -> None:
        """Call after the revoking transaction committed: later requests fail at once."""
        if not session_ids:
            return
        marker = orjson.dumps({"revoked": True})
        try:
            async with self.cache.redis.pipeline(transaction=False) as pipe:
                for session_id in session_ids:
                    pipe.set(self.cache.session_key(session_id), marker, ex=self.marker_ttl)
                await pipe.execute()
        except RedisError:
            log.warning("Redis unavailable: revocation is enforced from the database only")
        await self._announce(
            {"session_ids": [str(s) for s in session_ids], "user_id": user_id, "reason": reason}
        )

    async def user_changed(self, user_id: int, *, active: bool, role: str, reason: str) -> None:
        """Call after a user's role or state changed (or the user was deleted)."""
        try:
            await self.cache.redis.set(
                self.cache.user_key(user_id),
                orjson.dumps({"active": active, "role": role}),
                ex=self.marker_ttl,
            )
        except RedisError:
            log.warning("Redis unavailable: user state is enforced from the database only")
        # Deactivated, deleted or with another role: live connections end; a client that
        # reconnects gets what its current role allows.
        await self._announce({"session_ids": [], "user_id": user_id, "reason": reason})

    async def api_key_revoked(self, lookup_id: str, key_id: uuid.UUID, user_id: int) -> None:
        """A marker, not a delete: a fill racing with the revocation cannot undo it. Live
        connections opened with the key are closed."""
        try:
            await self.cache.redis.set(
                self.cache.apikey_key(lookup_id),
                orjson.dumps({"revoked_marker": True}),
                ex=CACHE_TTL * 2,
            )
        except RedisError:
            log.warning("Redis unavailable; the revoked API key may work for %ss", CACHE_TTL)
        await self._announce(
            {
                "session_ids": [],
                "api_key_ids": [str(key_id)],
                "user_id": user_id,
                "reason": "API key revoked",
            }
        )

    async def _announce(self, event: dict[str, Any]) -> None:
        try:
            await publish(self.cache.redis, self.cache.revocation_channel, orjson.dumps(event))
        except RedisError:
            log.warning("Redis unavailable: revocation event not published")
