"""Login sessions and their rotating refresh tokens.

A refresh token is stored only as a hash. Using it spends it (a conditional UPDATE, so two
concurrent uses cannot both win) and issues the next one of the same session; presenting a
spent token again is reuse, and the caller revokes the whole session."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage.db import Connection, Row
from storage.tables import refresh_tokens, sessions


async def create(
    conn: Connection,
    *,
    user_id: int,
    expires_at: datetime,
    token_hash: str,
    user_agent: str | None,
    ip: str | None,
) -> Row:
    session_id = uuid.uuid4()
    row = await conn.fetch_one(
        sa.insert(sessions)
        .values(
            id=session_id,
            user_id=user_id,
            expires_at=expires_at,
            user_agent=user_agent,
            ip=ip,
        )
        .returning(sessions)
    )
    await conn.execute(
        sa.insert(refresh_tokens).values(token_hash=token_hash, session_id=session_id)
    )
    assert row is not None
    return row


async def get(conn: Connection, session_id: uuid.UUID) -> Row | None:
    return await conn.fetch_one(sa.select(sessions).where(sessions.c.id == session_id))


async def find_token(conn: Connection, token_hash: str) -> Row | None:
    """The token row joined with its session (columns prefixed `session_`)."""
    return await conn.fetch_one(
        sa.select(
            refresh_tokens.c.token_hash,
            refresh_tokens.c.spent_at,
            sessions.c.id.label("session_id"),
            sessions.c.user_id,
            sessions.c.expires_at.label("session_expires_at"),
            sessions.c.revoked_at.label("session_revoked_at"),
        )
        .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
        .where(refresh_tokens.c.token_hash == token_hash)
    )


async def spend_token(conn: Connection, token_hash: str) -> bool:
    """Mark a refresh token spent; False if it already was (a reuse or a lost race)."""
    spent = await conn.execute(
        sa.update(refresh_tokens)
        .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.spent_at.is_(None))
        .values(spent_at=sa.func.now())
    )
    return spent == 1


async def add_token(conn: Connection, session_id: uuid.UUID, token_hash: str) -> None:
    await conn.execute(
        sa.insert(refresh_tokens).values(token_hash=token_hash, session_id=session_id)
    )
    await conn.execute(
        sa.update(sessions).where(sessions.c.id == session_id).values(last_used_at=sa.func.now())
    )


def _live() -> sa.ColumnElement[bool]:
    return sa.and_(sessions.c.revoked_at.is_(None), sessions.c.expires_at > sa.func.now())


async def list_live(conn: Connection, user_id: int) -> list[Row]:
    return await conn.fetch_all(
        sa.select(sessions)
        .where(sessions.c.user_id == user_id, _live())
        .order_by(sessions.c.last_used_at.desc())
    )


async def revoke(
    conn: Connection, session_id: uuid.UUID, reason: str, *, user_id: int | None = None
) -> Row | None:
    """Revoke one live session (of `user_id`, when given); None if there was none."""
    condition: list[Any] = [sessions.c.id == session_id, sessions.c.revoked_at.is_(None)]
    if user_id is not None:
        condition.append(sessions.c.user_id == user_id)
    return await conn.fetch_one(
        sa.update(sessions)
        .where(*condition)
        .values(revoked_at=sa.func.now(), revoked_reason=reason)
        .returning(sessions.c.id, sessions.c.user_id)
    )


async def revoke_all(
    conn: Connection, user_id: int, reason: str, *, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Revoke every live session of a user (except `keep`); return their ids."""
    condition: list[Any] = [sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)]
    if keep is not None:
        condition.append(sessions.c.id != keep)
    rows = await conn.fetch_all(
        sa.update(sessions)
        .where(*condition)
        .values(revoked_at=sa.func.now(), revoked_reason=reason)
        .returning(sessions.c.id)
    )
    return [row["id"] for row in rows]


async def state(conn: Connection, session_id: uuid.UUID) -> Row | None:
    """What authentication needs per request: the session and its user, in one query."""
    from storage.tables import users

    return await conn.fetch_one(
        sa.select(
            sessions.c.id,
            sessions.c.revoked_at,
            sessions.c.expires_at,
            users.c.id.label("user_id"),
            users.c.role,
            users.c.is_active,
        )
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.id == session_id)
    )
