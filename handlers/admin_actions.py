"""/admin/api actions: end a user's live connections, list and revoke a user's sessions,
close a WebRTC room. Each is announced on `admin:dashboard` (handlers/admin_notices.py)."""

from __future__ import annotations

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from handlers.admin_models import RoomPath
from handlers.admin_notices import announce
from handlers.http import json_response
from handlers.openapi import endpoint
from server.auth.admin_rules import require_manageable
from server.auth.authenticator import authenticator_key
from server.auth.schemas import SessionPath, SessionSummary, UserPath
from server.hub.hub import hub_key
from server.kernel.errors import NotFound, ServiceUnavailable
from server.kernel.principal import ADMIN_READ, ADMIN_WRITE, Principal
from storage import rooms, sessions, users
from storage.db import db_key, transaction
from storage.redis import publish


async def _existing_user(request: web.Request, user_id: int) -> str:
    """The user's role; NotFound without such a user."""
    async with transaction(request.app[db_key]) as conn:
        row = await users.get(conn, user_id)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return str(row["role"])


async def _manageable_user(request: web.Request, user_id: int, actor: Principal) -> None:
    """As _existing_user, and Forbidden when `actor` may not manage them (an admin acts on
    plain users only: admins and superusers are a superuser's, admin_rules.py)."""
    require_manageable(actor, await _existing_user(request, user_id))


@endpoint(
    summary="Disconnect a user's live connections",
    tags=["admin"],
    path=UserPath,
    auth=ADMIN_WRITE,
    status=204,
    errors=[404, 503],
)
async def disconnect_user(
    request: web.Request, path: UserPath, principal: Principal
) -> web.Response:
    """Every WebSocket and event stream of the user, on every node, is closed with 4003 (as
    a revocation). Sessions stay valid: the user may connect again (revoke a session, or
    deactivate the account with PATCH /users/{id}, to keep them out)."""
    await _manageable_user(request, path.user_id, principal)
    hub = request.app[hub_key]
    event = {"session_ids": [], "user_id": path.user_id, "reason": "disconnected by an admin"}
    try:
        await publish(hub.redis, hub.revocation_channel, orjson.dumps(event))
    except (RedisError, OSError) as error:
        raise ServiceUnavailable(f"Redis is unavailable: {error}") from None
    await announce(request.app, principal, "disconnected", {"user_id": path.user_id})
    return web.Response(status=204)


@endpoint(
    summary="A user's live sessions",
    tags=["admin"],
    path=UserPath,
    auth=ADMIN_READ,
    response=list[SessionSummary],
    errors=[404],
)
async def list_user_sessions(
    request: web.Request, path: UserPath, principal: Principal
) -> web.Response:
    """Most recently used first (every admin may read every account)."""
    await _existing_user(request, path.user_id)
    async with transaction(request.app[db_key]) as conn:
        rows = await sessions.list_live(conn, path.user_id)
    return json_response(
        [SessionSummary.model_validate(dict(row)).model_dump(mode="json") for row in rows]
    )


@endpoint(
    summary="Revoke any user's session",
    tags=["admin"],
    path=SessionPath,
    auth=ADMIN_WRITE,
    status=204,
    errors=[404],
)
async def revoke_session(
    request: web.Request, path: SessionPath, principal: Principal
) -> web.Response:
    """Its refresh token stops working, its access tokens are refused at once and its live
    connections close with 4003, on every node."""
    async with transaction(request.app[db_key]) as conn:
        session = await sessions.get(conn, path.session_id)
        owner = await users.get(conn, session["user_id"]) if session is not None else None
        if owner is not None:
            require_manageable(principal, owner["role"])
        ended = await sessions.revoke(conn, path.session_id, "revoked by an admin")
    if ended is None:
        raise NotFound("no live session has this id")
    await request.app[authenticator_key].sessions_revoked(
        [path.session_id], int(ended["user_id"]), "revoked by an admin"
    )
    await announce(
        request.app,
        principal,
        "session_revoked",
        {"session_id": str(path.session_id), "user_id": int(ended["user_id"])},
    )
    return web.Response(status=204)


@endpoint(
    summary="Close a WebRTC room",
    tags=["admin"],
    path=RoomPath,
    auth=ADMIN_WRITE,
    status=204,
    errors=[404],
)
async def close_room(request: web.Request, path: RoomPath, principal: Principal) -> web.Response:
    """Any room, whoever owns it: nobody can join it any more. As with DELETE
    /realtime/webrtc/rooms/{id}, members already inside keep their peer connections until
    they leave."""
    async with transaction(request.app[db_key]) as conn:
        deleted = await rooms.delete(conn, path.room_id)
    if not deleted:
        raise NotFound("no such room")
    await announce(request.app, principal, "room_closed", {"room_id": str(path.room_id)})
    return web.Response(status=204)
