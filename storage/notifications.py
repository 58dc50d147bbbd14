"""Notifications: stored first, then pushed to the user's (or a channel's) subscribers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from storage.db import Connection, Row
from storage.sql import json_batch
from storage.tables import notifications, users


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
    """A notification sent over REST (the worker's come from messages, below)."""
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


async def create_for_admins(
    conn: Connection, *, title: str, body: str, level: str, data: Any, message_id: Any
) -> list[Row]:
    """One notification per active admin or superuser (INSERT ... SELECT, one statement)."""
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


async def of_message(conn: Connection, message_id: uuid.UUID, *, user_id: int) -> list[Row]:
    """The notification a message already stored for this user: a redelivered message
    announces it again (the first delivery may have died before announcing it)."""
    return await conn.fetch_all(
        sa.select(notifications).where(
            notifications.c.user_id == user_id, notifications.c.message_id == message_id
        )
    )


async def of_admin_message(conn: Connection, message_id: uuid.UUID) -> list[Row]:
    """The notifications an admin message already stored, one per admin (looked up through
    the admins' own rows: there is no index on message_id alone)."""
    admins = sa.select(users.c.id).where(users.c.role.in_(("admin", "superuser")))
    return await conn.fetch_all(
        sa.select(notifications)
        .where(notifications.c.user_id.in_(admins), notifications.c.message_id == message_id)
        .order_by(notifications.c.id)
    )


@dataclass(frozen=True)
class FromMessage:
    """A user's notification that a message asks for (values already encoded)."""

    message_id: uuid.UUID
    user_id: int
    title: str
    body: str
    level: str
    data_json: str


# Record each message as processed (the inbox) and store its notification, for a batch, in
# ONE statement: atomic, one round trip, one commit (the batch: storage.sql.json_batch).
# A message already in the inbox (a redelivery) gets no second notification.
CREATE_ONCE_MANY = sa.text(
    """
    WITH input AS (
        SELECT * FROM json_to_recordset(CAST(:batch AS json)) AS t(
            n int, message_id uuid, user_id bigint, title text, body text, level text,
            data jsonb)
    ), p AS (
        INSERT INTO processed_messages (message_id, queue)
        SELECT message_id, :queue FROM input ORDER BY n
        ON CONFLICT (message_id) DO NOTHING
        RETURNING message_id
    ), s AS (
        UPDATE messages SET status = 'processed', processed_at = now()
        WHERE id IN (SELECT message_id FROM p)
    )
    INSERT INTO notifications (user_id, title, body, level, data, message_id)
    SELECT input.user_id, input.title, input.body, input.level, input.data, input.message_id
    FROM input JOIN p USING (message_id) ORDER BY input.n
    RETURNING *
    """
)


async def create_once_many(
    conn: Connection, queue: str, batch: Sequence[FromMessage]
) -> list[Row | None]:
    """Store each message's notification unless the message was processed already (then
    None), and record the messages as processed, in one statement."""
    unique = list({item.message_id: item for item in reversed(batch)}.values())[::-1]
    rows = await conn.fetch_all(
        CREATE_ONCE_MANY,
        {
            "queue": queue,
            "batch": json_batch(
                {
                    "message_id": item.message_id,
                    "user_id": item.user_id,
                    "title": item.title,
                    "body": item.body,
                    "level": item.level,
                    "data": orjson.Fragment(item.data_json),
                }
                for item in unique
            ),
        },
    )
    created = {str(row["message_id"]): row for row in rows}
    results: list[Row | None] = []
    for item in batch:  # a message twice in the batch: the second one is the repeat
        results.append(created.pop(str(item.message_id), None))
    return results
