"""/users: your own account (/users/me) and user management for admins.

Rules: roles rank user < admin < superuser. Admins manage plain users; only a superuser
creates, changes or removes admins and superusers, or grants those roles; the last active
superuser can be neither demoted, deactivated nor deleted (checked in the same statement
as the change). Changes that end access take effect at once (sessions revoked, caches
updated)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.http import json_response
from handlers.openapi import endpoint
from server.auth.authenticator import authenticator_key
from server.auth.schemas import (
    AccountDelete,
    AdminUserCreate,
    AdminUserUpdate,
    PasswordChange,
    UserCreate,
    UserListQuery,
    UserOut,
    UserPage,
    UserPath,
    UserUpdateSelf,
)
from server.auth.service import auth_service_key, conflict_from, user_out
from server.kernel.errors import Conflict, Forbidden, IntegrityViolation, NotFound
from server.kernel.principal import (
    ADMIN_READ,
    ADMIN_WRITE,
    PERSON,
    USER_READ,
    USER_WRITE,
    Principal,
    Role,
)
from storage import sessions, users
from storage.db import Connection, Row, db_key, transaction

PRIVILEGED = (Role.admin, Role.superuser)
LAST_SUPERUSER = "the last active superuser cannot be demoted, deactivated or deleted"


async def _load(conn: Connection, user_id: int) -> Row:
    row = await users.get(conn, user_id)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return row


async def _after_change(request: web.Request, before: Row, after: Row | None, reason: str) -> None:
    """Make a change that reduces access effective at once."""
    auth = request.app[authenticator_key]
    user_id = before["id"]
    if after is None or not after["is_active"]:
        async with transaction(request.app[db_key]) as conn:
            ended = await sessions.revoke_all(conn, user_id, reason) if after is not None else []
        await auth.sessions_revoked(ended, user_id, reason)
    await auth.user_changed(
        user_id,
        active=after is not None and bool(after["is_active"]),
        role=(after or before)["role"],
        reason=reason,
    )


# -- /users/me ---------------------------------------------------------------------------------


@endpoint(summary="Your account", tags=["users"], auth=USER_READ, response=UserOut)
async def get_me(request: web.Request, principal: Principal) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        row = await _load(conn, principal.user_id)
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
    changes = body.model_dump(exclude_unset=True)
    async with transaction(request.app[db_key]) as conn:
        try:
            row = await users.update(conn, principal.user_id, **changes) if changes else None
        except IntegrityViolation as error:
            raise conflict_from(error) from None
        row = row or await _load(conn, principal.user_id)
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
    """Needs your password. Everything of yours goes with it (sessions, API keys)."""
    service = request.app[auth_service_key]
    async with transaction(request.app[db_key]) as conn:
        row = await _load(conn, principal.user_id)
        valid, _ = await service.hasher.verify(body.password, row["password_hash"])
        if not valid:
            raise Forbidden("password is wrong", code="wrong_password")
        if not await users.delete_keeping_a_superuser(conn, principal.user_id):
            raise Conflict(LAST_SUPERUSER, code="last_superuser")
    await _after_change(request, row, None, "account deleted")
    return web.Response(status=204)


# -- admin ---------------------------------------------------------------------------------------


def _require_manageable(actor: Principal, target_role: str, new_role: Role | None = None) -> None:
    touches_privileged = Role(target_role) in PRIVILEGED or new_role in PRIVILEGED
    if touches_privileged and not actor.is_at_least(Role.superuser):
        raise Forbidden(
            "only a superuser can manage admins or grant admin roles", code="insufficient_role"
        )


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
    _require_manageable(principal, Role.user, body.role)
    user_data = UserCreate(
        email=body.email,
        username=body.username,
        password=body.password,
        password_confirm=body.password,
        full_name=body.full_name,
    )
    async with transaction(request.app[db_key]) as conn:
        user = await request.app[auth_service_key].register_user(
            conn, user_data=user_data, role=body.role, is_active=body.is_active
        )
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
        row = await _load(conn, path.user_id)
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
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "role" in changes:
        changes["role"] = changes["role"].value
    async with transaction(request.app[db_key]) as conn:
        before = await _load(conn, path.user_id)
        _require_manageable(principal, before["role"], body.role)
        if not changes:
            return json_response(user_out(before))
        demotes = changes.get("role", Role.superuser) != Role.superuser or not changes.get(
            "is_active", True
        )
        update = users.update_keeping_a_superuser if demotes else users.update
        try:
            after = await update(conn, path.user_id, **changes)
        except IntegrityViolation as error:
            raise conflict_from(error) from None
        if after is None:
            raise Conflict(LAST_SUPERUSER, code="last_superuser")
    if after["role"] != before["role"] or after["is_active"] != before["is_active"]:
        await _after_change(request, before, after, "changed by an admin")
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
    async with transaction(request.app[db_key]) as conn:
        before = await _load(conn, path.user_id)
        _require_manageable(principal, before["role"])
        if not await users.delete_keeping_a_superuser(conn, path.user_id):
            raise Conflict(LAST_SUPERUSER, code="last_superuser")
    await _after_change(request, before, None, "deleted by an admin")
    return web.Response(status=204)
