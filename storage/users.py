"""Users: lookups, creation and single-statement updates. Uniqueness of email and username
is case-insensitive (unique indexes on lower()); a clash surfaces as IntegrityViolation."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from storage.db import Connection, Row
from storage.tables import users

PUBLIC_COLUMNS = [c for c in users.c if c.name != "password_hash"]


async def create(
    conn: Connection,
    *,
    email: str,
    username: str,
    password_hash: str,
    role: str = "user",
    full_name: str | None = None,
    is_active: bool = True,
) -> Row:
    row = await conn.fetch_one(
        sa.insert(users)
        .values(
            email=email,
            username=username,
            password_hash=password_hash,
            role=role,
            full_name=full_name,
            is_active=is_active,
        )
        .returning(users)
    )
    assert row is not None
    return row


async def get(conn: Connection, user_id: int) -> Row | None:
    return await conn.fetch_one(sa.select(users).where(users.c.id == user_id))


async def find_by_login(conn: Connection, login: str) -> Row | None:
    """The user whose email or username is `login`, ignoring case."""
    folded = login.lower()
    return await conn.fetch_one(
        sa.select(users).where(
            sa.or_(
                sa.func.lower(users.c.email) == folded, sa.func.lower(users.c.username) == folded
            )
        )
    )


async def update(conn: Connection, user_id: int, **values: Any) -> Row | None:
    """Set the given columns (and updated_at); None when the user does not exist."""
    return await conn.fetch_one(
        sa.update(users)
        .where(users.c.id == user_id)
        .values(**values, updated_at=sa.func.now())
        .returning(users)
    )


async def record_login(conn: Connection, user_id: int, new_hash: str | None) -> None:
    values: dict[str, Any] = {"last_login_at": sa.func.now()}
    if new_hash is not None:
        values["password_hash"] = new_hash
    await conn.execute(sa.update(users).where(users.c.id == user_id).values(**values))


def _other_active_superusers(user_id: int) -> sa.Exists:
    other = users.alias("other")
    return sa.exists().where(
        other.c.role == "superuser", other.c.is_active.is_(True), other.c.id != user_id
    )


def keeps_a_superuser(user_id: int) -> sa.ColumnElement[bool]:
    """A condition true unless `user_id` is the last active superuser: used in the WHERE
    clause of demotions, deactivations and deletions so the check and the change are one
    atomic statement."""
    target = users.alias("target")
    is_last = sa.and_(
        sa.exists().where(
            target.c.id == user_id, target.c.role == "superuser", target.c.is_active.is_(True)
        ),
        sa.not_(_other_active_superusers(user_id)),
    )
    return sa.not_(is_last)


async def update_keeping_a_superuser(conn: Connection, user_id: int, **values: Any) -> Row | None:
    """Like update(), but does nothing (None) if it would leave no active superuser."""
    await conn.execute(sa.text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
    return await conn.fetch_one(
        sa.update(users)
        .where(users.c.id == user_id, keeps_a_superuser(user_id))
        .values(**values, updated_at=sa.func.now())
        .returning(users)
    )


async def delete_keeping_a_superuser(conn: Connection, user_id: int) -> bool:
    await conn.execute(sa.text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
    deleted = await conn.execute(
        sa.delete(users).where(users.c.id == user_id, keeps_a_superuser(user_id))
    )
    return deleted == 1


async def search(
    conn: Connection,
    *,
    role: str | None,
    is_active: bool | None,
    text: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Row], int]:
    """A page of users (newest first) and the total matching the filters."""
    conditions = []
    if role is not None:
        conditions.append(users.c.role == role)
    if is_active is not None:
        conditions.append(users.c.is_active.is_(is_active))
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            sa.or_(
                users.c.email.ilike(pattern, escape="\\"),
                users.c.username.ilike(pattern, escape="\\"),
                users.c.full_name.ilike(pattern, escape="\\"),
            )
        )
    where = sa.and_(sa.true(), *conditions)
    rows = await conn.fetch_all(
        sa.select(users).where(where).order_by(users.c.id.desc()).limit(limit).offset(offset)
    )
    total = await conn.fetch_value(sa.select(sa.func.count()).select_from(users).where(where))
    return rows, int(total)
