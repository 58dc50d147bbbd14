"""WebRTC room definitions (who may join, how many, media and recording)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from storage.db import Connection, Row
from storage.tables import rooms


async def create(
    conn: Connection,
    *,
    name: str,
    owner_id: int,
    max_participants: int,
    media: bool,
    record: bool,
    allowed_user_ids: list[int] | None,
) -> Row:
    row = await conn.fetch_one(
        sa.insert(rooms)
        .values(
            id=uuid.uuid4(),
            name=name,
            owner_id=owner_id,
            max_participants=max_participants,
            media=media,
            record=record,
            allowed_user_ids=allowed_user_ids,
        )
        .returning(rooms)
    )
    assert row is not None
    return row


async def get(conn: Connection, room_id: uuid.UUID) -> Row | None:
    return await conn.fetch_one(sa.select(rooms).where(rooms.c.id == room_id))


async def list_visible(conn: Connection, user_id: int, *, everything: bool) -> list[Row]:
    """Rooms the user may enter (admins: all), newest first."""
    query = sa.select(rooms).order_by(rooms.c.created_at.desc()).limit(500)
    if not everything:
        query = query.where(
            sa.or_(
                rooms.c.allowed_user_ids.is_(None),
                rooms.c.owner_id == user_id,
                sa.literal(user_id) == sa.any_(rooms.c.allowed_user_ids),
            )
        )
    return await conn.fetch_all(query)


async def delete(conn: Connection, room_id: uuid.UUID) -> bool:
    return await conn.execute(sa.delete(rooms).where(rooms.c.id == room_id)) == 1
