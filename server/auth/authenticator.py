"""Authenticator: turns a request into a Principal, for every surface.

Credentials, in order: `X-API-Key: <key>`, `Authorization: Bearer <access token or API key>`,
and (for WebSocket/EventSource, which cannot set headers) a single-use `?ticket=`.

Revocation is immediate: each access token names its session, and every request checks that
session and its user. The Authenticator is the auth cache (cache.py) and holds one part per
concern, each given that cache and the parts it asks:

    standing.py      Standing: is this session live, this user active, with which role?
    api_key_auth.py  ApiKeyAuth: an API key -> Principal (its owner's Standing)
    tickets.py       Tickets: single-use connection tickets (re-checked like the above)
    revocation.py    Revocations: ending sessions, accounts and keys at once, on every node
"""

from __future__ import annotations

import uuid

from aiohttp import web
from redis.asyncio import Redis

from server.auth.api_key_auth import ApiKeyAuth
from server.auth.cache import AuthCache
from server.auth.revocation import Revocations
from server.auth.service import AuthService
from server.auth.standing import Standing
from server.auth.tickets import Tickets
from server.kernel.errors import Forbidden, Unauthorized
from server.kernel.principal import Access, Principal
from server.kernel.settings import Settings
from storage.db import Pool


class Authenticator(AuthCache):
    def __init__(self, settings: Settings, pool: Pool, redis: Redis, service: AuthService) -> None:
        super().__init__(redis, settings.REDIS_PREFIX)
        self.service = service
        self.standing = Standing(self, pool)
        self.api_key_auth = ApiKeyAuth(self, pool, self.standing)
        self.tickets = Tickets(self, settings.TICKET_TTL, self.standing, self.api_key_auth)
        self.revocations = Revocations(self, settings.ACCESS_TOKEN_TTL)

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
            return await self.api_key_auth.from_api_key(api_key)
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            scheme, _, credential = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise Unauthorized("use `Authorization: Bearer <token>`", code="invalid_token")
            credential = credential.strip()
            if credential.startswith("rtk_"):
                return await self.api_key_auth.from_api_key(credential)
            return await self.from_access_token(credential)
        ticket = request.query.get("ticket") if allow_ticket else None
        if ticket is not None:
            return await self.tickets.redeem_ticket(ticket)
        return None

    async def from_access_token(self, token: str) -> Principal:
        claims = self.service.decode_access_token(token)
        user_id, session_id = int(claims["sub"]), uuid.UUID(claims["sid"])
        role = await self.standing.live_session_role(session_id, user_id)
        return Principal(user_id=user_id, role=role, session_id=session_id)

    # -- tickets and revocations, for the handlers and UserAdmin ------------------------------

    async def issue_ticket(self, principal: Principal) -> str:
        return await self.tickets.issue_ticket(principal)

    async def redeem_ticket(self, ticket: str) -> Principal:
        return await self.tickets.redeem_ticket(ticket)

    async def sessions_revoked(
        self, session_ids: list[uuid.UUID], user_id: int, reason: str
    ) -> None:
        await self.revocations.sessions_revoked(session_ids, user_id, reason)

    async def user_changed(self, user_id: int, *, active: bool, role: str, reason: str) -> None:
        await self.revocations.user_changed(user_id, active=active, role=role, reason=reason)

    async def api_key_revoked(self, lookup_id: str, key_id: uuid.UUID, user_id: int) -> None:
        await self.revocations.api_key_revoked(lookup_id, key_id, user_id)


authenticator_key: web.AppKey[Authenticator] = web.AppKey("auth", Authenticator)
