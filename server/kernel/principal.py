"""Who is calling (Principal) and what a route demands (Access). Pure values, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    user = "user"
    admin = "admin"
    superuser = "superuser"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank


_RANKS = {Role.user: 0, Role.admin: 1, Role.superuser: 2}

# What an API key may be limited to. A session (a logged-in person) has every scope its
# role allows; an API key has only the scopes it was created with, and never more than its
# owner's role allows (scopes narrow, they never widen).
SCOPES: dict[str, str] = {
    "read": "read your own resources (GET)",
    "write": "change your own resources",
    "admin": "admin endpoints, if the owner is an admin",
    "messaging": "publish messages (POST /messaging/*), if the owner is an admin",
    "realtime": "connect to WebSocket/SSE, publish and broadcast",
}


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: Role
    session_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    scopes: frozenset[str] | None = None  # None: a session, with everything its role allows
    api_key_lookup: str | None = None  # the key's public lookup id, to re-check it later

    @property
    def is_api_key(self) -> bool:
        return self.api_key_id is not None

    def allows(self, scope: str | None) -> bool:
        return scope is None or self.scopes is None or scope in self.scopes

    def is_at_least(self, role: Role) -> bool:
        return self.role >= role


@dataclass(frozen=True)
class Access:
    """What a route requires. `scope` applies to API keys; `api_keys=False` shuts them out
    (e.g. creating API keys needs a logged-in person). A key acts as its owner: its scopes
    narrow what the owner may do and never widen it, so a key's role bar is never below
    `role`."""

    role: Role = Role.user
    scope: str | None = None
    optional: bool = False
    api_keys: bool = True
    api_key_role: Role | None = None  # a stricter role bar for API keys (never a looser one)

    def role_for(self, principal: Principal) -> Role:
        if principal.is_api_key and self.api_key_role is not None:
            return max(self.role, self.api_key_role, key=lambda role: role.rank)
        return self.role

    def describe(self) -> str:
        if self.optional:
            return "Authentication optional: the answer is personalised when a valid token is sent."
        parts = [f"Requires role `{self.role}` or higher."]
        stricter = self.api_key_role is not None and self.api_key_role.rank > self.role.rank
        if self.api_keys and stricter:
            parts.append(f"API keys need an owner of role `{self.api_key_role}` or higher.")
        if not self.api_keys:
            parts.append("API keys are not accepted: log in.")
        elif self.scope:
            parts.append(f"API keys need the `{self.scope}` scope.")
        return " ".join(parts)


USER_READ = Access(scope="read")
USER_WRITE = Access(scope="write")
PERSON = Access(api_keys=False)
ADMIN_READ = Access(role=Role.admin, scope="admin")
ADMIN_WRITE = Access(role=Role.admin, scope="admin")
