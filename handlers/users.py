"""/users: your own account (/users/me) and user management for admins. Who may manage
whom, and the last active superuser, are server/auth/admin_rules.py; UserAdmin
(server/auth/admin.py) applies them."""

from __future__ import annotations

from aiohttp import web

from handlers.http import json_response
from handlers.openapi import endpoint
from handlers.private_channels import channel_deleted
from server.auth.admin import UserAdmin, existing
from server.auth.authenticator import authenticator_key
from server.auth.schemas import (
    AccountDelete,
    AdminUserCreate,
    AdminUserUpdate,
    PasswordChange,
    UserListQuery,
    UserOut,
    UserPage,
    UserPath,
    UserUpdateSelf,
)
from server.auth.service import auth_service_key, user_out
from server.kernel.principal import (
    ADMIN_READ,
    ADMIN_WRITE,
    PERSON,
    USER_READ,
    USER_WRITE,
    Principal,
)
from storage import users
from storage.db import db_key, transaction


def _admin(request: web.Request) -> UserAdmin:
    return UserAdmin(request.app[db_key], request.app[authenticator_key])


# -- /users/me ---------------------------------------------------------------------------------


@endpoint(summary="Your account", tags=["users"], auth=USER_READ, response=UserOut)
async def get_me(request: web.Request, principal: Principal) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        row = await existing(conn, principal.user_id)
    return json_response(user_out(row))


@endpoint(
    summary="Change your profile",
    tags=["users"],
    body=UserUpdateSelf,
    auth=USER_WRITE,
    response=UserOut,
    errors=[409],
)
async def update_me(
    request: web.Request, body: UserUpdateSelf, principal: Principal
) -> web.Response:
    row = await _admin(request).update_profile(
        principal.user_id, body.model_dump(exclude_unset=True)
    )
    return json_response(user_out(row))


@endpoint(
    summary="Change your password",
    tags=["users"],
    body=PasswordChange,
    auth=PERSON,
    status=204,
    errors=[422],
)
async def change_password(
    request: web.Request, body: PasswordChange, principal: Principal
) -> web.Response:
    """Needs the current password; ends every other session of yours."""
    async with transaction(request.app[db_key]) as conn:
        ended = await request.app[auth_service_key].change_password(
            conn,
            user_id=principal.user_id,
            current_password=body.current_password,
            new_password=body.new_password,
            keep_session=principal.session_id,
        )
    await request.app[authenticator_key].sessions_revoked(
        ended, principal.user_id, "password changed"
    )
    return web.Response(status=204)


@endpoint(
    summary="Delete your account",
    tags=["users"],
    body=AccountDelete,
    auth=PERSON,
    status=204,
    errors=[409],
)
async def delete_me(
    request: web.Request, body: AccountDelete, principal: Principal
) -> web.Response:
    """Needs your password. Everything of yours goes with it (sessions, API keys, the
    private channels you own: their members' subscriptions end)."""
    channels = await _admin(request).delete_own(principal.user_id, body.password)
    await channel_deleted(request.app, channels)
    return web.Response(status=204)


# -- admin ---------------------------------------------------------------------------------------


@endpoint(
    summary="List users", tags=["admin"], query=UserListQuery, auth=ADMIN_READ, response=UserPage
)
async def list_users(
    request: web.Request, query: UserListQuery, principal: Principal
) -> web.Response:
    """Newest first; filter by role, active state and text (email, username, name)."""
    async with transaction(request.app[db_key]) as conn:
        rows, total = await users.search(
            conn,
            role=query.role.value if query.role else None,
            is_active=query.is_active,
            text=query.q,
            limit=query.per_page,
            offset=(query.page - 1) * query.per_page,
        )
    page = UserPage(
        items=[user_out(r) for r in rows], total=total, page=query.page, per_page=query.per_page
    )
    return json_response(page)


@endpoint(
    summary="Create a user",
    tags=["admin"],
    body=AdminUserCreate,
    auth=ADMIN_WRITE,
    response=UserOut,
    status=201,
    errors=[409, 422],
)
async def create_user(
    request: web.Request, body: AdminUserCreate, principal: Principal
) -> web.Response:
    user = await _admin(request).create(principal, body)
    return json_response(user, status=201)


@endpoint(
    summary="Get a user",
    tags=["admin"],
    path=UserPath,
    auth=ADMIN_READ,
    response=UserOut,
    errors=[404],
)
async def get_user(request: web.Request, path: UserPath, principal: Principal) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        row = await existing(conn, path.user_id)
    return json_response(user_out(row))


@endpoint(
    summary="Change a user",
    tags=["admin"],
    path=UserPath,
    body=AdminUserUpdate,
    auth=ADMIN_WRITE,
    response=UserOut,
    errors=[404, 409],
)
async def update_user(
    request: web.Request, path: UserPath, body: AdminUserUpdate, principal: Principal
) -> web.Response:
    """Activate, deactivate, rename or change the role. Deactivating ends the user's
    sessions at once."""
    after = await _admin(request).update(principal, path.user_id, body)
    return json_response(user_out(after))


@endpoint(
    summary="Delete a user",
    tags=["admin"],
    path=UserPath,
    auth=ADMIN_WRITE,
    status=204,
    errors=[404, 409],
)
async def delete_user(request: web.Request, path: UserPath, principal: Principal) -> web.Response:
    """The private channels the user owned go with the account (as DELETE
    /realtime/private-channels/{name} would)."""
    channels = await _admin(request).delete(principal, path.user_id)
    await channel_deleted(request.app, channels)
    return web.Response(status=204)
