"""Tickets: single-use credentials for WebSocket and EventSource, which cannot set headers
(`?ticket=`). A ticket lives TICKET_TTL seconds in Redis, under its hash, and stands for
the session or API key that asked for it; redeeming deletes it and re-checks that session
(Standing) or key (ApiKeyAuth), so a revocation in between wins."""

from __future__ import annotations

import logging
import uuid

import orjson
from redis.exceptions import RedisError

from server.auth.api_key_auth import ApiKeyAuth, check_usable
from server.auth.cache import AuthCache
from server.auth.standing import Standing
from server.kernel.errors import Unauthorized
from server.kernel.principal import Principal
from server.kernel.security import apikeys

log = logging.getLogger(__name__)

MAX_TICKET_LENGTH = 128


class Tickets:
    def __init__(
        self, cache: AuthCache, ttl: int, standing: Standing, api_key_auth: ApiKeyAuth
    ) -> None:
        self.cache = cache
        self.ttl = ttl
        self.standing = standing
        self.api_key_auth = api_key_auth

    async def issue_ticket(self, principal: Principal) -> str:
        """A single-use ticket standing for `principal`; redeeming re-checks its session
        or API key."""
        ticket = apikeys.new_ticket()
        value = {
            "user_id": principal.user_id,
            "session_id": str(principal.session_id) if principal.session_id else None,
            "api_key_id": str(principal.api_key_id) if principal.api_key_id else None,
            "api_key_lookup": principal.api_key_lookup,
            "scopes": sorted(principal.scopes) if principal.scopes is not None else None,
        }
        await self.cache.redis.set(
            self.cache.ticket_key(apikeys.hash_ticket(ticket)), orjson.dumps(value), ex=self.ttl
        )
        return ticket

    async def redeem_ticket(self, ticket: str) -> Principal:
        """Single use: GETDEL, so a second redemption finds nothing."""
        if not ticket or len(ticket) > MAX_TICKET_LENGTH:
            raise Unauthorized("invalid ticket", code="invalid_ticket")
        try:
            raw = await self.cache.redis.getdel(self.cache.ticket_key(apikeys.hash_ticket(ticket)))
        except RedisError:
            log.warning("Redis unavailable: tickets cannot be redeemed")
            raise Unauthorized("tickets are unavailable right now", code="invalid_ticket") from None
        if raw is None:
            raise Unauthorized("ticket is invalid, expired or already used", code="invalid_ticket")
        value = orjson.loads(raw)
        user_id = int(value["user_id"])
        if value["session_id"]:
            session_id = uuid.UUID(value["session_id"])
            role = await self.standing.live_session_role(session_id, user_id)
            return Principal(user_id=user_id, role=role, session_id=session_id)
        key_state = await self.api_key_auth.api_key_state(value["api_key_lookup"] or "")
        if not key_state or key_state.get("user_id", user_id) != user_id:
            raise Unauthorized("API key was revoked", code="api_key_revoked")
        check_usable(key_state)
        return Principal(
            user_id=user_id,
            role=await self.standing.user_role(user_id),
            api_key_id=uuid.UUID(value["api_key_id"]),
            scopes=frozenset(value["scopes"] or ()),
            api_key_lookup=value["api_key_lookup"],
        )
