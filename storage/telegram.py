"""Telegram links (which chat gets a user's notifications) and the one-time codes that make
them. Codes are stored as hashes only; every change is one atomic statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from storage.db import Connection, Row
from storage.tables import telegram_link_codes, telegram_links, users


async def replace_code(conn: Connection, user_id: int, code_hash: str, ttl: int) -> None:
    """The user's one outstanding code, valid for `ttl` seconds (an older one stops working)."""
    expires_at = sa.func.now() + timedelta(seconds=ttl)
    statement = insert(telegram_link_codes).values(
        code_hash=code_hash, user_id=user_id, expires_at=expires_at
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[telegram_link_codes.c.user_id],
            set_={"code_hash": code_hash, "created_at": sa.func.now(), "expires_at": expires_at},
        )
    )


async def consume_code(conn: Connection, code_hash: str) -> Row | None:
    """Spend a code: {user_id, live} (live is False when it had expired), or None for a code
    that never existed or was spent already."""
    return await conn.fetch_one(
        sa.delete(telegram_link_codes)
        .where(telegram_link_codes.c.code_hash == code_hash)
        .returning(
            telegram_link_codes.c.user_id,
            (telegram_link_codes.c.expires_at > sa.func.now()).label("live"),
        )
    )


async def link(conn: Connection, user_id: int, chat_id: int, bot_id: int | None) -> None:
    """Link the chat to the user, replacing the user's previous chat and the chat's previous
    user (one chat per user, one user per chat)."""
    await conn.execute(
        sa.delete(telegram_links).where(
            telegram_links.c.chat_id == chat_id, telegram_links.c.user_id != user_id
        )
    )
    statement = insert(telegram_links).values(user_id=user_id, chat_id=chat_id, bot_id=bot_id)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[telegram_links.c.user_id],
            set_={"chat_id": chat_id, "bot_id": bot_id, "linked_at": sa.func.now()},
        )
    )


async def link_of_chat(conn: Connection, chat_id: int) -> Row | None:
    """The link of a chat with its user's id, username and email, or None."""
    return await conn.fetch_one(
        sa.select(telegram_links, users.c.username, users.c.email)
        .join(users, users.c.id == telegram_links.c.user_id)
        .where(telegram_links.c.chat_id == chat_id)
    )


async def unlink_chat(conn: Connection, chat_id: int) -> int | None:
    """Remove the chat's link; the id of the user it belonged to, or None."""
    user_id: int | None = await conn.fetch_value(
        sa.delete(telegram_links)
        .where(telegram_links.c.chat_id == chat_id)
        .returning(telegram_links.c.user_id)
    )
    return user_id


async def unlink_user(conn: Connection, user_id: int) -> bool:
    """Remove the user's link; False when there was none."""
    removed = await conn.execute(
        sa.delete(telegram_links).where(telegram_links.c.user_id == user_id)
    )
    return removed > 0


async def chats_of(conn: Connection, user_ids: Sequence[int]) -> dict[int, int]:
    """user id -> linked chat id, for those of `user_ids` that have one."""
    if not user_ids:
        return {}
    rows = await conn.fetch_all(
        sa.select(telegram_links.c.user_id, telegram_links.c.chat_id).where(
            telegram_links.c.user_id.in_(list(user_ids))
        )
    )
    return {row["user_id"]: row["chat_id"] for row in rows}
