"""ApiKeyAuth: an `rtk_...` key turned into the Principal it stands for. The key's state
(hash, scopes, expiry, revocation) is read from the cache, else from PostgreSQL (which
also records the key's last use); its owner must still be active (Standing)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from server.auth.cache import AuthCache
from server.auth.standing import Standing
from server.kernel.errors import Unauthorized
from server.kernel.principal import Principal
from server.kernel.security import apikeys
from storage import api_keys
from storage.db import Pool, transaction


class ApiKeyAuth:
    def __init__(self, cache: AuthCache, pool: Pool, standing: Standing) -> None:
        self.cache = cache
        self.pool = pool
        self.standing = standing

    async def from_api_key(self, text: str) -> Principal:
        parsed = apikeys.parse_api_key(text)
        if parsed is None:
            raise Unauthorized("invalid API key", code="invalid_api_key")
        state = await self.api_key_state(parsed.lookup_id)
        if state.get("revoked_marker"):
            raise Unauthorized("API key was revoked", code="api_key_revoked")
        if not state or not apikeys.constant_time_equals(
            state["key_hash"], apikeys.hash_api_key(parsed.key)
        ):
            raise Unauthorized("invalid API key", code="invalid_api_key")
        check_usable(state)
        role = await self.standing.user_role(state["user_id"])
        return Principal(
            user_id=state["user_id"],
            role=role,
            api_key_id=uuid.UUID(state["id"]),
            scopes=frozenset(state["scopes"]),
            api_key_lookup=parsed.lookup_id,
        )

    async def api_key_state(self, lookup_id: str) -> dict[str, Any]:
        """The key's state ({} when no key has this lookup id)."""
        (state,) = await self.cache.cached(self.cache.apikey_key(lookup_id))
        return state if state is not None else await self._load_api_key(lookup_id)

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
        await self.cache._fill(self.cache.apikey_key(lookup_id), state)
        await self.cache._fill(
            self.cache.user_key(row["user_id"]), {"active": state["active"], "role": row["role"]}
        )
        return state


def check_usable(state: dict[str, Any]) -> None:
    """401 for a key that was revoked or has expired."""
    if state.get("revoked") or state.get("revoked_marker"):
        raise Unauthorized("API key was revoked", code="api_key_revoked")
    expires_at = state.get("expires_at")
    if expires_at is not None and expires_at <= datetime.now(UTC).timestamp():
        raise Unauthorized("API key has expired", code="api_key_expired")
