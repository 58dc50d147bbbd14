"""/auth: registration, login (JSON or the OAuth2 password form), token refresh with
rotation, logout, sessions, single-use connection tickets and API keys."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from handlers.http import json_response
from handlers.openapi import endpoint
from server.auth import registration
from server.auth.authenticator import authenticator_key
from server.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyPath,
    LoginIn,
    LoginResult,
    RefreshIn,
    RegistrationAccepted,
    SessionOut,
    SessionPath,
    TicketOut,
    TokenPair,
    UserCreate,
)
from server.auth.service import auth_service_key
from server.auth.throttle import login_throttle_key, registration_throttle_key
from server.hub.hub import hub_key
from server.hub.notifications import notification_event
from server.kernel.addresses import client_address_key
from server.kernel.errors import Forbidden, NotFound, Unauthorized
from server.kernel.principal import PERSON, USER_READ, Access, Principal, Role
from server.kernel.security import apikeys as key_format
from server.kernel.settings import settings_key
from storage import api_keys, sessions, users
from storage.db import Row, db_key, transaction

TICKET_ACCESS = Access(scope="realtime")

log = logging.getLogger(__name__)


def _address(request: web.Request) -> str:
    return request.get(client_address_key) or request.remote or "unknown"


@endpoint(
    summary="Register",
    tags=["auth"],
    body=UserCreate,
    response=RegistrationAccepted,
    status=202,
    errors=[409, 429],
)
async def register(request: web.Request, body: UserCreate) -> web.Response:
    """Creates an account with the `user` role, then sign in with its credentials. The
    answer is the same whether the email was free or already has an account (its owner is
    notified instead), so it never tells who has an account. A taken username is 409 (names
    are public). The password needs 8+ characters and must not be a common password or your
    email/username; there are no composition rules. Registrations are limited per client
    address (429 with Retry-After)."""
    address = _address(request)
    await request.app[registration_throttle_key].attempt(address)
    async with transaction(request.app[db_key]) as conn:
        outcome = await registration.register(
            request.app[auth_service_key], conn, user_data=body, address=address
        )
    if outcome.notice is not None:
        await _announce(request, outcome.notice)
    return json_response(RegistrationAccepted(), status=202)


async def _announce(request: web.Request, notice: Row) -> None:
    """Push the owner's stored notice live; it stays listed in their notifications anyway,
    so a Redis failure changes nothing in the answer."""
    name = f"user:{notice['user_id']}"
    try:
        await request.app[hub_key].publish(name, orjson.dumps(notification_event(notice)), None)
    except (RedisError, OSError) as error:
        log.warning("could not push the registration notice to %s: %s", name, error)


@endpoint(
    summary="Log in",
    tags=["auth"],
    body=LoginIn,
    form=True,
    response=LoginResult,
    errors=[401, 429],
)
async def login(request: web.Request, body: LoginIn) -> web.Response:
    """JSON `{email or username, password}` or the OAuth2 password form
    (`username`, `password`). Unknown accounts and wrong passwords get the same answer.
    Failed attempts are throttled (429 with Retry-After): progressively per account and
    address, per address, and per account for addresses it has not signed in from lately
    (docs/AUTHENTICATION.md); sessions (/auth/refresh) are never throttled."""
    throttle = request.app[login_throttle_key]
    address = _address(request)
    async with transaction(request.app[db_key]) as conn:
        known = await users.find_by_login(conn, body.login)
    # One counter per account, whichever login (email or username) is typed; unknown
    # logins are counted by what was typed, so both look the same from outside.
    account = f"user:{known['id']}" if known is not None else f"login:{body.login.lower()}"
    await throttle.check(account, address)
    service = request.app[auth_service_key]
    try:
        async with transaction(request.app[db_key]) as conn:
            result = await service.login(
                conn,
                email=body.login,
                password=body.password,
                user_agent=request.headers.get("User-Agent"),
                ip=address,
            )
    except Unauthorized:
        await throttle.failed(account, address)
        raise
    await throttle.succeeded(account, address)
    return json_response(result, headers={"Cache-Control": "no-store"})


@endpoint(summary="Refresh tokens", tags=["auth"], body=RefreshIn, response=TokenPair)
async def refresh(request: web.Request, body: RefreshIn) -> web.Response:
    """Spends the refresh token and returns a new pair. Presenting a spent refresh token
    again ends that whole session (someone replayed it) and answers 401."""
    async with transaction(request.app[db_key]) as conn:
        outcome = await request.app[auth_service_key].refresh(
            conn, body.refresh_token, user_agent=request.headers.get("User-Agent")
        )
    if outcome.revoked_session is not None:
        auth = request.app[authenticator_key]
        async with transaction(request.app[db_key]) as conn:
            session = await sessions.get(conn, outcome.revoked_session)
        if session is not None:
            await auth.sessions_revoked([session["id"]], session["user_id"], "refresh token reused")
        raise Unauthorized(
            "refresh token was already used; the session is ended", code="token_reused"
        )
    if outcome.tokens is None:
        raise Unauthorized("invalid or expired refresh token", code="invalid_token")
    return json_response(outcome.tokens, headers={"Cache-Control": "no-store"})


@endpoint(summary="Log out", tags=["auth"], body=RefreshIn, auth=USER_READ, status=204)
async def logout(request: web.Request, body: RefreshIn, principal: Principal) -> web.Response:
    """Ends the session of this refresh token (one of yours); its access tokens stop at once."""
    async with transaction(request.app[db_key]) as conn:
        ended = await request.app[auth_service_key].logout(
            conn, body.refresh_token, user_id=principal.user_id
        )
    if ended is not None:
        await request.app[authenticator_key].sessions_revoked([ended], principal.user_id, "logout")
    return web.Response(status=204)


@endpoint(summary="Log out everywhere", tags=["auth"], auth=PERSON, status=204)
async def logout_all(request: web.Request, principal: Principal) -> web.Response:
    """Ends every session of yours, this one included."""
    async with transaction(request.app[db_key]) as conn:
        ended = await sessions.revoke_all(conn, principal.user_id, "logout-all")
    await request.app[authenticator_key].sessions_revoked(ended, principal.user_id, "logout-all")
    return web.Response(status=204)


@endpoint(summary="Your live sessions", tags=["auth"], auth=PERSON, response=list[SessionOut])
async def list_sessions(request: web.Request, principal: Principal) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        rows = await sessions.list_live(conn, principal.user_id)
    return json_response(
        [
            SessionOut.model_validate({**row, "current": row["id"] == principal.session_id})
            for row in rows
        ]
    )


@endpoint(
    summary="End one session",
    tags=["auth"],
    path=SessionPath,
    auth=PERSON,
    status=204,
    errors=[404],
)
async def end_session(
    request: web.Request, path: SessionPath, principal: Principal
) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        ended = await sessions.revoke(
            conn, path.session_id, "ended by user", user_id=principal.user_id
        )
    if ended is None:
        raise NotFound("no live session of yours has this id")
    await request.app[authenticator_key].sessions_revoked(
        [path.session_id], principal.user_id, "ended by user"
    )
    return web.Response(status=204)


@endpoint(
    summary="A single-use ticket for WebSocket/SSE",
    tags=["auth"],
    auth=TICKET_ACCESS,
    response=TicketOut,
)
async def ws_ticket(request: web.Request, principal: Principal) -> web.Response:
    """Browsers cannot set headers on WebSocket or EventSource: open them with
    `?ticket=...`. A ticket works once, within a few seconds, and only for the session (or
    API key) that asked for it."""
    ticket = await request.app[authenticator_key].issue_ticket(principal)
    ttl = request.app[settings_key].TICKET_TTL
    return json_response(
        TicketOut(ticket=ticket, expires_in=ttl), headers={"Cache-Control": "no-store"}
    )


def _key_out(row: dict[str, object]) -> ApiKeyOut:
    return ApiKeyOut.model_validate(row)


@endpoint(
    summary="Create an API key",
    tags=["api keys"],
    body=ApiKeyCreate,
    auth=PERSON,
    response=ApiKeyCreated,
    status=201,
)
async def create_api_key(
    request: web.Request, body: ApiKeyCreate, principal: Principal
) -> web.Response:
    """The key is shown in this answer only. It acts as you, limited to its scopes
    (default: read and write); `admin` needs an admin account."""
    scopes: list[str] = sorted(set(body.scopes if body.scopes is not None else ("read", "write")))
    if "admin" in scopes and not principal.is_at_least(Role.admin):
        raise Forbidden(
            "only admins can create keys with the admin scope", code="insufficient_role"
        )
    generated = key_format.generate_api_key()
    async with transaction(request.app[db_key]) as conn:
        row = await api_keys.create(
            conn,
            user_id=principal.user_id,
            name=body.name,
            lookup_id=generated.lookup_id,
            key_hash=generated.secret_hash,
            scopes=scopes,
            expires_at=body.expires_at,
        )
    created = ApiKeyCreated.model_validate({**row, "key": generated.key})
    return json_response(created, status=201, headers={"Cache-Control": "no-store"})


@endpoint(
    summary="Your API keys (never the secrets)",
    tags=["api keys"],
    auth=PERSON,
    response=list[ApiKeyOut],
)
async def list_api_keys(request: web.Request, principal: Principal) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        rows = await api_keys.list_for_user(conn, principal.user_id)
    return json_response([_key_out(row) for row in rows])


@endpoint(
    summary="Revoke an API key",
    tags=["api keys"],
    path=ApiKeyPath,
    auth=PERSON,
    status=204,
    errors=[404],
)
async def delete_api_key(
    request: web.Request, path: ApiKeyPath, principal: Principal
) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        row = await api_keys.revoke(conn, path.key_id, principal.user_id)
    if row is None:
        raise NotFound("no API key of yours has this id")
    await request.app[authenticator_key].api_key_revoked(
        row["lookup_id"], row["id"], principal.user_id
    )
    return web.Response(status=204)
