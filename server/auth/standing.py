"""Standing: is this session still live, its user still active, and with which role?
Asked of the cache first and of PostgreSQL on a miss (the answer then fills the cache).
Every authenticated request asks, so revocations take effect at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from server.auth.cache import AuthCache
from server.kernel.errors import Unauthorized
from server.kernel.principal import Role
from storage import sessions, users
from storage.db import Pool, connect, transaction


class Standing:
    def __init__(self, cache: AuthCache, pool: Pool) -> None:
        self.cache = cache
        self.pool = pool

    async def live_session_role(self, session_id: uuid.UUID, user_id: int) -> Role:
        """The user's current role if the session is live and the user active; else 401."""
        session_state, user_state = await self.cache.cached(
            self.cache.session_key(session_id), self.cache.user_key(user_id)
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
        async with connect(self.pool) as conn:  # one SELECT: no BEGIN/COMMIT round trips
            row = await sessions.state(conn, session_id)
        if row is None or row["user_id"] != user_id:
            return {"revoked": True}, {"active": False}
        session_state = {
            "user_id": user_id,
            "revoked": row["revoked_at"] is not None,
            "expires_at": row["expires_at"].timestamp(),
        }
        user_state = {"active": bool(row["is_active"]), "role": row["role"]}
        await self.cache._fill(self.cache.session_key(session_id), session_state)
        await self.cache._fill(self.cache.user_key(user_id), user_state)
        return session_state, user_state

    async def user_role(self, user_id: int) -> Role:
        """The user's current role if active; 401 otherwise (cache, then database)."""
        (user_state,) = await self.cache.cached(self.cache.user_key(user_id))
        if user_state is None:
            async with transaction(self.pool) as conn:
                row = await users.get(conn, user_id)
            user_state = {"active": False, "role": "user"}
            if row is not None:
                user_state = {"active": bool(row["is_active"]), "role": row["role"]}
            await self.cache._fill(self.cache.user_key(user_id), user_state)
        if not user_state.get("active"):
            raise Unauthorized("account is deactivated or deleted", code="account_inactive")
        return Role(user_state["role"])
