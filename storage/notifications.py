"""Notifications: stored first, then pushed to the user's (or a channel's) subscribers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from storage.db import Connection, Row
from storage.tables import notifications


async def create(
    conn: Connection,
    *,
    user_id: int | None,
    channel: str | None,
    title: str,
    body: str,
    level: str,
    data: Any = None,
    message_id: Any = None,
) -> Row:
    row = await conn.fetch_one(
        sa.insert(notifications)
        .values(
            user_id=user_id,
            channel=channel,
            title=title,
            body=body,
            level=level,
            data=data,
            message_id=message_id,
        )
        .returning(notifications)
    )
    assert row is not None
    return row


async def for_user(
    conn: Connection, user_id: int, *, unread_only: bool, limit: int, offset: int
) -> tuple[list[Row], int]:
    condition = [notifications.c.user_id == user_id]
    if unread_only:
        condition.append(notifications.c.read_at.is_(None))
    rows = await conn.fetch_all(
        sa.select(notifications)
        .where(*condition)
        .order_by(notifications.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    total = await conn.fetch_value(
        sa.select(sa.func.count()).select_from(notifications).where(*condition)
    )
    return rows, int(total)


async def mark_read(conn: Connection, notification_id: int, user_id: int) -> Row | None:
    return await conn.fetch_one(
        sa.update(notifications)
        .where(notifications.c.id == notification_id, notifications.c.user_id == user_id)
        .values(read_at=sa.func.coalesce(notifications.c.read_at, sa.func.now()))
        .returning(notifications)
    )


async def create_for_admins(
    conn: Connection, *, title: str, body: str, level: str, data: Any, message_id: Any
) -> list[Row]:
    """One notification per active admin or superuser (INSERT ... SELECT, one statement)."""
    from storage.tables import users

    select = sa.select(
        users.c.id,
        sa.literal(title),
        sa.literal(body),
        sa.literal(level),
        sa.cast(sa.literal(data, type_=JSONB), JSONB),
        sa.literal(message_id, type_=sa.Uuid),
    ).where(users.c.role.in_(("admin", "superuser")), users.c.is_active.is_(True))
    return await conn.fetch_all(
        sa.insert(notifications)
        .from_select(["user_id", "title", "body", "level", "data", "message_id"], select)
        .returning(notifications)
    )


CREATE_ONCE = sa.text(
    """
    WITH p AS (
        INSERT INTO processed_messages (message_id, queue) VALUES (:message_id, :queue)
        ON CONFLICT (message_id) DO NOTHING
        RETURNING message_id
    ), s AS (
        UPDATE messages SET status = 'processed', processed_at = now()
        WHERE id IN (SELECT message_id FROM p)
    )
    INSERT INTO notifications (user_id, title, body, level, data, message_id)
    SELECT :user_id, :title, :body, :level, CAST(:data AS jsonb), message_id FROM p
    RETURNING *
    """
)


async def create_once(
    conn: Connection,
    *,
    message_id: Any,
    queue: str,
    user_id: int,
    title: str,
    body: str,
    level: str,
    data_json: str,
) -> Row | None:
    """Store a user's notification unless this message was processed already, and record
    it as processed, in ONE statement (atomic, one round trip). None for a repeat."""
    return await conn.fetch_one(
        CREATE_ONCE,
        {
            "message_id": message_id,
            "queue": queue,
            "user_id": user_id,
            "title": title,
            "body": body,
            "level": level,
            "data": data_json,
        },
    )
