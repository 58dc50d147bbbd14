"""UserAdmin: managing accounts (an admin's, or your own) under the rules of
admin_rules.py. Changes that reduce access take effect at once: once the change is
committed, the user's sessions are revoked (deactivation) and the Authenticator's caches
and live connections learn the new role or state. Deleting an account deletes the private
channels it owns first, in the same transaction, and returns their names: the caller (a
handler) then ends their members' subscriptions as for DELETE /realtime/private-channels
(the hub is above this floor)."""

from __future__ import annotations

from typing import Any

from server.auth.admin_rules import (
    access_changed,
    last_superuser,
    may_remove_a_superuser,
    require_manageable,
)
from server.auth.authenticator import Authenticator
from server.auth.schemas import AdminUserCreate, AdminUserUpdate, UserCreate, UserOut
from server.auth.service import conflict_from
from server.kernel.errors import Forbidden, IntegrityViolation, NotFound
from server.kernel.principal import Principal, Role
from storage import private_channels, sessions, users
from storage.db import Connection, Pool, Row, transaction


async def existing(conn: Connection, user_id: int) -> Row:
    """The user's row; NotFound if there is none."""
    row = await users.get(conn, user_id)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return row


class UserAdmin:
    def __init__(self, pool: Pool, auth: Authenticator) -> None:
        self.pool = pool
        self.auth = auth

    async def update_profile(self, user_id: int, changes: dict[str, Any]) -> Row:
        """Your own email, username or name (nothing that changes access)."""
        async with transaction(self.pool) as conn:
            try:
                row = await users.update(conn, user_id, **changes) if changes else None
            except IntegrityViolation as error:
                raise conflict_from(error) from None
            return row or await existing(conn, user_id)

    async def delete_own(self, user_id: int, password: str) -> list[str]:
        """Your own account, given your password (not the last active superuser's); the
        private channels it owned, now deleted."""
        async with transaction(self.pool) as conn:
            row = await existing(conn, user_id)
            valid, _ = await self.auth.service.hasher.verify(password, row["password_hash"])
            if not valid:
                raise Forbidden("password is wrong", code="wrong_password")
            channels = await private_channels.delete_owned(conn, user_id)
            if not await users.delete_keeping_a_superuser(conn, user_id):
                raise last_superuser()
        await self._take_effect(row, None, "account deleted")
        return channels

    async def create(self, actor: Principal, body: AdminUserCreate) -> UserOut:
        require_manageable(actor, Role.user, body.role)
        user_data = UserCreate(
            email=body.email,
            username=body.username,
            password=body.password,
            password_confirm=body.password,
            full_name=body.full_name,
        )
        async with transaction(self.pool) as conn:
            return await self.auth.service.register_user(
                conn, user_data=user_data, role=body.role, is_active=body.is_active
            )

    async def update(self, actor: Principal, user_id: int, body: AdminUserUpdate) -> Row:
        """Activate, deactivate, rename or change the role."""
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        if "role" in changes:
            changes["role"] = changes["role"].value
        async with transaction(self.pool) as conn:
            before = await existing(conn, user_id)
            require_manageable(actor, before["role"], body.role)
            if not changes:
                return before
            guarded = may_remove_a_superuser(changes)
            update = users.update_keeping_a_superuser if guarded else users.update
            try:
                after = await update(conn, user_id, **changes)
            except IntegrityViolation as error:
                raise conflict_from(error) from None
            if after is None:
                raise last_superuser()
        if access_changed(before, after):
            await self._take_effect(before, after, "changed by an admin")
        return after

    async def delete(self, actor: Principal, user_id: int) -> list[str]:
        """The private channels the user owned, now deleted with the account."""
        async with transaction(self.pool) as conn:
            before = await existing(conn, user_id)
            require_manageable(actor, before["role"])
            channels = await private_channels.delete_owned(conn, user_id)
            if not await users.delete_keeping_a_superuser(conn, user_id):
                raise last_superuser()
        await self._take_effect(before, None, "deleted by an admin")
        return channels

    async def _take_effect(self, before: Row, after: Row | None, reason: str) -> None:
        """After the commit: a deactivated user's sessions end (a deleted user's went with
        the row), and every node learns the new role or state."""
        user_id = before["id"]
        if after is not None and not after["is_active"]:
            async with transaction(self.pool) as conn:
                ended = await sessions.revoke_all(conn, user_id, reason)
            await self.auth.sessions_revoked(ended, user_id, reason)
        await self.auth.user_changed(
            user_id,
            active=after is not None and bool(after["is_active"]),
            role=(after or before)["role"],
            reason=reason,
        )
