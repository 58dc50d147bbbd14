"""Authenticator: turns a request into a Principal, for every surface.

Credentials, in order: `X-API-Key: <key>`, `Authorization: Bearer <access token or API key>`,
and (for WebSocket/EventSource, which cannot set headers) a single-use `?ticket=`.

Revocation is immediate: each access token names its session, and every request checks that
session and its user. The check reads Redis first (one MGET: session state + user state),
falls back to PostgreSQL on a miss or when Redis is down, and fills the cache with SET NX so
that a fill racing with a revocation can never overwrite the revocation marker. Revocations
also publish an event on `{REDIS_PREFIX}:auth:revocations` so realtime connections of that
session or user can be closed.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.auth.service import AuthService
from server.kernel.errors import Forbidden, Unauthorized
from server.kernel.principal import Access, Principal, Role
from server.kernel.security import apikeys
from server.kernel.settings import Settings
from storage import api_keys, sessions, users
from storage.coalescer import Coalescer
from storage.db import Pool, transaction

log = logging.getLogger(__name__)

CACHE_TTL = 60  # seconds a cached session/user/key state may be served


class Authenticator:
    def __init__(self, settings: Settings, pool: Pool, redis: Redis, service: AuthService) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.service = service
        prefix = settings.REDIS_PREFIX
        self._session_key = f"{prefix}:auth:session:{{}}".format
        self._user_key = f"{prefix}:auth:user:{{}}".format
        self._apikey_key = f"{prefix}:auth:apikey:{{}}".format
        self._ticket_key = f"{prefix}:auth:ticket:{{}}".format
        self.revocation_channel = f"{prefix}:auth:revocations"
        self._lookups: Coalescer[tuple[str, ...], list[Any]] = Coalescer(
            self._mget, name="auth-cache-lookups"
        )

    # -- requests ----------------------------------------------------------------------------

    async def authenticate(self, request: web.Request, access: Access) -> Principal | None:
        """The caller, checked against `access`; None only for optional access without
        credentials. Raises Unauthorized (401) or Forbidden (403)."""
        principal = await self.identify(request, allow_ticket=False)
        return self.authorize(principal, access)

    async def authenticate_connection(self, request: web.Request, access: Access) -> Principal:
        """For WebSocket and SSE: headers as above, or a single-use `ticket` query value."""
        principal = await self.identify(request, allow_ticket=True)
        authorized = self.authorize(principal, access)
        if authorized is None:
            raise Unauthorized("authentication required")
        return authorized

    def authorize(self, principal: Principal | None, access: Access) -> Principal | None:
        if principal is None:
            if access.optional:
                return None
            raise Unauthorized("authentication required")
        if principal.is_api_key and not access.api_keys:
            raise Forbidden("API keys cannot do this; log in", code="api_key_not_allowed")
        role = access.role_for(principal)
        if not principal.is_at_least(role):
            raise Forbidden(f"requires the {role} role", code="insufficient_role")
        if not principal.allows(access.scope):
            raise Forbidden(
                f"this API key lacks the {access.scope} scope", code="insufficient_scope"
            )
        return principal

    async def identify(self, request: web.Request, *, allow_ticket: bool) -> Principal | None:
        api_key = request.headers.get("X-API-Key")
        if api_key is not None:
            return await self.from_api_key(api_key)
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            scheme, _, credential = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise Unauthorized("use `Authorization: Bearer <token>`", code="invalid_token")
            credential = credential.strip()
            if credential.startswith("rtk_"):
                return await self.from_api_key(credential)
            return await self.from_access_token(credential)
        ticket = request.query.get("ticket") if allow_ticket else None
        if ticket is not None:
            return await self.redeem_ticket(ticket)
        return None

    # -- access tokens -----------------------------------------------------------------------

    async def from_access_token(self, token: str) -> Principal:
        claims = self.service.decode_access_token(token)
        user_id, session_id = int(claims["sub"]), uuid.UUID(claims["sid"])
        role = await self.live_session_role(session_id, user_id)
        return Principal(user_id=user_id, role=role, session_id=session_id)

    async def live_session_role(self, session_id: uuid.UUID, user_id: int) -> Role:
        """The user's current role if the session is live and the user active; else 401."""
        session_state, user_state = await self._cached(
            self._session_key(session_id), self._user_key(user_id)
        )
        if session_state is None or user_state is None:
            session_state, user_state = await self._load_session(session_id, user_id)
        if session_state.get("revoked") or session_state.get("user_id") != user_id:
            raise Unauthorized("session has ended", code="session_revoked")
        if session_state["expires_at"] <= datetime.now(UTC).timestamp():
            raise Unauthorized("session has expired", code="session_expired")
        if not user_state.get("active"):
            raise Unauthorized("account is deactivated or deleted", code="account_inactive")
        return Role(user_state["role"])

    async def _load_session(
        self, session_id: uuid.UUID, user_id: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        async with transaction(self.pool) as conn:
            row = await sessions.state(conn, session_id)
        if row is None or row["user_id"] != user_id:
            return {"revoked": True}, {"active": False}
        session_state = {
            "user_id": user_id,
            "revoked": row["revoked_at"] is not None,
            "expires_at": row["expires_at"].timestamp(),
        }
        user_state = {"active": bool(row["is_active"]), "role": row["role"]}
        await self._fill(self._session_key(session_id), session_state)
        await self._fill(self._user_key(user_id), user_state)
        return session_state, user_state

    # -- API keys ----------------------------------------------------------------------------

    async def from_api_key(self, text: str) -> Principal:
        parsed = apikeys.parse_api_key(text)
        if parsed is None:
            raise Unauthorized("invalid API key", code="invalid_api_key")
        state = await self._api_key_state(parsed.lookup_id)
        if state.get("revoked_marker"):
            raise Unauthorized("API key was revoked", code="api_key_revoked")
        if not state or not apikeys.constant_time_equals(
            state["key_hash"], apikeys.hash_api_key(parsed.key)
        ):
            raise Unauthorized("invalid API key", code="invalid_api_key")
        self._check_key_state(state)
        role = await self._user_role(state["user_id"])
        return Principal(
            user_id=state["user_id"],
            role=role,
            api_key_id=uuid.UUID(state["id"]),
            scopes=frozenset(state["scopes"]),
            api_key_lookup=parsed.lookup_id,
        )

    @staticmethod
    def _check_key_state(state: dict[str, Any]) -> None:
        if state.get("revoked") or state.get("revoked_marker"):
            raise Unauthorized("API key was revoked", code="api_key_revoked")
        expires_at = state.get("expires_at")
        if expires_at is not None and expires_at <= datetime.now(UTC).timestamp():
            raise Unauthorized("API key has expired", code="api_key_expired")

    async def _api_key_state(self, lookup_id: str) -> dict[str, Any]:
        (state,) = await self._cached(self._apikey_key(lookup_id))
        return state if state is not None else await self._load_api_key(lookup_id)

    async def _user_role(self, user_id: int) -> Role:
        """The user's current role if active; 401 otherwise (cache, then database)."""
        (user_state,) = await self._cached(self._user_key(user_id))
        if user_state is None:
            async with transaction(self.pool) as conn:
                row = await users.get(conn, user_id)
            user_state = {"active": False, "role": "user"}
            if row is not None:
                user_state = {"active": bool(row["is_active"]), "role": row["role"]}
            await self._fill(self._user_key(user_id), user_state)
        if not user_state.get("active"):
            raise Unauthorized("account is deactivated or deleted", code="account_inactive")
        return Role(user_state["role"])

    async def _load_api_key(self, lookup_id: str) -> dict[str, Any]:
        async with transaction(self.pool) as conn:
            row = await api_keys.find_for_auth(conn, lookup_id)
            if row is not None:
                await api_keys.touch(conn, row["id"])
        if row is None:
            return {}
        state = {
            "id": str(row["id"]),
            "user_id": row["user_id"],
            "key_hash": row["key_hash"],
            "scopes": list(row["scopes"]),
            "revoked": row["revoked_at"] is not None,
            "expires_at": row["expires_at"].timestamp() if row["expires_at"] else None,
            "active": bool(row["is_active"]),
            "role": row["role"],
        }
        await self._fill(self._apikey_key(lookup_id), state)
        await self._fill(
            self._user_key(row["user_id"]), {"active": state["active"], "role": row["role"]}
        )
        return state

    # -- tickets -----------------------------------------------------------------------------

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
        await self.redis.set(
            self._ticket_key(apikeys.hash_ticket(ticket)),
            orjson.dumps(value),
            ex=self.settings.TICKET_TTL,
        )
        return ticket

    async def redeem_ticket(self, ticket: str) -> Principal:
        """Single use: GETDEL, so a second redemption finds nothing."""
        if not ticket or len(ticket) > 128:
            raise Unauthorized("invalid ticket", code="invalid_ticket")
        try:
            raw = await self.redis.getdel(self._ticket_key(apikeys.hash_ticket(ticket)))
        except RedisError:
            log.warning("Redis unavailable: tickets cannot be redeemed")
            raise Unauthorized("tickets are unavailable right now", code="invalid_ticket") from None
        if raw is None:
            raise Unauthorized("ticket is invalid, expired or already used", code="invalid_ticket")
        value = orjson.loads(raw)
        user_id = int(value["user_id"])
        if value["session_id"]:
            session_id = uuid.UUID(value["session_id"])
            role = await self.live_session_role(session_id, user_id)
            return Principal(user_id=user_id, role=role, session_id=session_id)
        key_state = await self._api_key_state(value["api_key_lookup"] or "")
        if not key_state or key_state.get("user_id", user_id) != user_id:
            raise Unauthorized("API key was revoked", code="api_key_revoked")
        self._check_key_state(key_state)
        return Principal(
            user_id=user_id,
            role=await self._user_role(user_id),
            api_key_id=uuid.UUID(value["api_key_id"]),
            scopes=frozenset(value["scopes"] or ()),
            api_key_lookup=value["api_key_lookup"],
        )

    # -- revocation --------------------------------------------------------------------------

    async def sessions_revoked(
        self, session_ids: list[uuid.UUID], user_id: int, reason: str
    ) -> None:
        """Call after the revoking transaction committed: later requests fail at once."""
        if not session_ids:
            return
        marker = orjson.dumps({"revoked": True})
        ttl = max(self.settings.ACCESS_TOKEN_TTL, CACHE_TTL)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for session_id in session_ids:
                    pipe.set(self._session_key(session_id), marker, ex=ttl)
                await pipe.execute()
        except RedisError:
            log.warning("Redis unavailable: revocation is enforced from the database only")
        await self._announce(
            {"session_ids": [str(s) for s in session_ids], "user_id": user_id, "reason": reason}
        )

    async def user_changed(self, user_id: int, *, active: bool, role: str, reason: str) -> None:
        """Call after a user's role or state changed (or the user was deleted)."""
        try:
            await self.redis.set(
                self._user_key(user_id),
                orjson.dumps({"active": active, "role": role}),
                ex=max(self.settings.ACCESS_TOKEN_TTL, CACHE_TTL),
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
            await self.redis.set(
                self._apikey_key(lookup_id),
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
            await self.redis.publish(self.revocation_channel, orjson.dumps(event))
        except RedisError:
            log.warning("Redis unavailable: revocation event not published")

    # -- cache helpers -----------------------------------------------------------------------

    async def _cached(self, *keys: str) -> list[dict[str, Any] | None]:
        """The cached states (None where missing, or everywhere when Redis is down)."""
        values = await self._lookups.submit(keys)
        return [None if value is None else orjson.loads(value) for value in values]

    async def _mget(self, lookups: list[tuple[str, ...]]) -> list[list[Any]]:
        """The lookups of every request being authenticated now, in one MGET. Each one is
        sent after its request arrived, so a revocation that came first is always seen."""
        keys = list(dict.fromkeys(key for lookup in lookups for key in lookup))
        try:
            found = dict(zip(keys, await self.redis.mget(keys), strict=True))
        except RedisError:
            found = {}
        return [[found.get(key) for key in lookup] for lookup in lookups]

    async def _fill(self, key: str, value: dict[str, Any]) -> None:
        with contextlib.suppress(RedisError):
            await self.redis.set(key, orjson.dumps(value), ex=CACHE_TTL, nx=True)


authenticator_key: web.AppKey[Authenticator] = web.AppKey("auth", Authenticator)
