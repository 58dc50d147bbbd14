"""Notifications: stored first, then pushed to the user's (or a channel's) subscribers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

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
) -> Row:
    row = await conn.fetch_one(
        sa.insert(notifications)
        .values(user_id=user_id, channel=channel, title=title, body=body, level=level, data=data)
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
