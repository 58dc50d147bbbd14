"""Private channels and their members: the durable record the hub's membership cache
(server/hub/private.py) is filled from."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from storage.db import Connection, Row
from storage.tables import files, private_channel_members, private_channels, users

MAX_LISTED = 1000  # members in one listing (the owner first, then by time added)


async def create(conn: Connection, channel: str, owner_id: int) -> Row | None:
    """A new channel, its owner its first member; None when the name is taken. (Check
    count_owned() first, in the same transaction, to keep a limit.)"""
    row = await conn.fetch_one(
        insert(private_channels)
        .values(channel=channel, owner_id=owner_id)
        .on_conflict_do_nothing(index_elements=["channel"])
        .returning(*private_channels.c)
    )
    if row is None:
        return None
    await conn.execute(
        sa.insert(private_channel_members).values(channel=channel, user_id=owner_id, role="owner")
    )
    return row


async def get(conn: Connection, channel: str) -> Row | None:
    return await conn.fetch_one(
        sa.select(private_channels).where(private_channels.c.channel == channel)
    )


async def role_of(conn: Connection, channel: str, user_id: int) -> str | None:
    """`owner`, `member`, or None for a user who is not a member."""
    value = await conn.fetch_value(
        sa.select(private_channel_members.c.role).where(
            private_channel_members.c.channel == channel,
            private_channel_members.c.user_id == user_id,
        )
    )
    return None if value is None else str(value)


async def members(conn: Connection, channel: str) -> list[Row]:
    return await conn.fetch_all(
        sa.select(
            private_channel_members.c.user_id,
            private_channel_members.c.role,
            private_channel_members.c.added_at,
        )
        .where(private_channel_members.c.channel == channel)
        .order_by(
            (private_channel_members.c.role == "owner").desc(),
            private_channel_members.c.added_at,
            private_channel_members.c.user_id,
        )
        .limit(MAX_LISTED)
    )


async def add_member(conn: Connection, channel: str, user_id: int) -> Row | None:
    """Make a user a member (no change if they are one: their role stays). None when no
    such user exists."""
    exists = await conn.fetch_value(sa.select(users.c.id).where(users.c.id == user_id))
    if exists is None:
        return None
    await conn.execute(
        insert(private_channel_members)
        .values(channel=channel, user_id=user_id, role="member")
        .on_conflict_do_nothing(index_elements=["channel", "user_id"])
    )
    return await conn.fetch_one(
        sa.select(
            private_channel_members.c.user_id,
            private_channel_members.c.role,
            private_channel_members.c.added_at,
        ).where(
            private_channel_members.c.channel == channel,
            private_channel_members.c.user_id == user_id,
        )
    )


async def remove_member(conn: Connection, channel: str, user_id: int) -> bool:
    """Remove a member who is not the owner; False when there was none such."""
    removed = await conn.execute(
        sa.delete(private_channel_members).where(
            private_channel_members.c.channel == channel,
            private_channel_members.c.user_id == user_id,
            private_channel_members.c.role != "owner",
        )
    )
    return removed == 1


async def visible(conn: Connection, user_id: int, *, everything: bool) -> list[Row]:
    """The channels a user is a member of (admins: every channel), newest first, with the
    user's role there (null for an admin who is not a member)."""
    role = private_channel_members.c.role
    query = (
        sa.select(*private_channels.c, role)
        .select_from(
            private_channels.outerjoin(
                private_channel_members,
                sa.and_(
                    private_channel_members.c.channel == private_channels.c.channel,
                    private_channel_members.c.user_id == user_id,
                ),
            )
        )
        .order_by(private_channels.c.created_at.desc(), private_channels.c.channel)
        .limit(MAX_LISTED)
    )
    if not everything:
        query = query.where(role.is_not(None))
    return await conn.fetch_all(query)


async def delete(conn: Connection, channel: str) -> bool:
    """Delete a channel and its members; False when there was no such channel. Files
    announced there stay their owners' (`channel` set to null), so that a channel created
    later under the same name cannot read them. The channel row is locked first: a member
    being added meanwhile waits, then fails (the channel is gone)."""
    locked = await conn.fetch_value(
        sa.select(private_channels.c.channel)
        .where(private_channels.c.channel == channel)
        .with_for_update()
    )
    if locked is None:
        return False
    await conn.execute(sa.update(files).where(files.c.channel == channel).values(channel=None))
    await conn.execute(sa.delete(private_channels).where(private_channels.c.channel == channel))
    return True


async def delete_owned(conn: Connection, owner_id: int) -> list[str]:
    """Delete every channel `owner_id` owns (before their account goes: the cascade would
    do it silently); the names of those deleted."""
    owned = await conn.fetch_all(
        sa.select(private_channels.c.channel)
        .where(private_channels.c.owner_id == owner_id)
        .order_by(private_channels.c.channel)
        .with_for_update()
    )
    names = [str(row["channel"]) for row in owned]
    for channel in names:
        await delete(conn, channel)
    return names


async def count_owned(conn: Connection, owner_id: int) -> int:
    """How many channels the user owns. Locks the count until the transaction ends: two
    creations by one owner run one after the other, so a limit checked with it holds."""
    await conn.execute(
        sa.select(
            sa.func.pg_advisory_xact_lock(
                sa.func.hashtextextended(
                    sa.literal("private_channels.owner:") + sa.cast(owner_id, sa.Text), 0
                )
            )
        )
    )
    return int(
        await conn.fetch_value(
            sa.select(sa.func.count())
            .select_from(private_channels)
            .where(private_channels.c.owner_id == owner_id)
        )
    )
