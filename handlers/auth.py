"""/auth: registration, login (JSON or the OAuth2 password form), token refresh with
rotation, logout, sessions, single-use connection tickets and API keys."""

from __future__ import annotations

from aiohttp import web

from handlers.http import client_address, json_response
from handlers.openapi import endpoint
from server.auth.authenticator import authenticator_key
from server.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyPath,
    LoginIn,
    LoginResult,
    RefreshIn,
    SessionOut,
    SessionPath,
    TicketOut,
    TokenPair,
    UserCreate,
    UserOut,
)
from server.auth.service import auth_service_key
from server.auth.throttle import login_throttle_key
from server.kernel.errors import Forbidden, NotFound, Unauthorized
from server.kernel.principal import PERSON, USER_READ, Access, Principal, Role
from server.kernel.security import apikeys as key_format
from server.kernel.settings import settings_key
from storage import api_keys, sessions, users
from storage.db import db_key, transaction

TICKET_ACCESS = Access(scope="realtime")


def _address(request: web.Request) -> str:
    return client_address(
        request, trust_forwarded_for=request.app[settings_key].TRUST_FORWARDED_FOR
    )


@endpoint(
    summary="Register", tags=["auth"], body=UserCreate, response=UserOut, status=201, errors=[409]
)
async def register(request: web.Request, body: UserCreate) -> web.Response:
    """Creates an account with the `user` role. The password needs 8+ characters and must
    not be a common password or your email/username; there are no composition rules."""
    async with transaction(request.app[db_key]) as conn:
        user = await request.app[auth_service_key].register_user(conn, user_data=body)
    return json_response(user, status=201)


@endpoint(
    summary="Log in",
    tags=["auth"],
    body=LoginIn,
    form=True,
    response=LoginResult,
    errors=[401, 403, 429],
)
async def login(request: web.Request, body: LoginIn) -> web.Response:
    """JSON `{email or username, password}` or the OAuth2 password form
    (`username`, `password`). Unknown accounts and wrong passwords get the same answer.
    Failed attempts are throttled per account and per address (429 with Retry-After)."""
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
