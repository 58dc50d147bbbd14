"""API keys: only a lookup id and a hash are stored; the key itself is shown once."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from storage.db import Connection, Row
from storage.tables import api_keys, users


async def create(
    conn: Connection,
    *,
    user_id: int,
    name: str,
    lookup_id: str,
    key_hash: str,
    scopes: list[str],
    expires_at: datetime | None,
) -> Row:
    row = await conn.fetch_one(
        sa.insert(api_keys)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            name=name,
            lookup_id=lookup_id,
            key_hash=key_hash,
            scopes=scopes,
            expires_at=expires_at,
        )
        .returning(api_keys)
    )
    assert row is not None
    return row


async def list_for_user(conn: Connection, user_id: int) -> list[Row]:
    return await conn.fetch_all(
        sa.select(api_keys)
        .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
        .order_by(api_keys.c.created_at.desc())
    )


async def find_for_auth(conn: Connection, lookup_id: str) -> Row | None:
    """The key with its owner's role and state."""
    return await conn.fetch_one(
        sa.select(
            api_keys.c.id,
            api_keys.c.user_id,
            api_keys.c.key_hash,
            api_keys.c.scopes,
            api_keys.c.expires_at,
            api_keys.c.revoked_at,
            api_keys.c.last_used_at,
            users.c.role,
            users.c.is_active,
        )
        .join(users, users.c.id == api_keys.c.user_id)
        .where(api_keys.c.lookup_id == lookup_id)
    )


async def touch(conn: Connection, key_id: uuid.UUID) -> None:
    """Record use, at most once a minute per key (not a write on every request)."""
    await conn.execute(
        sa.update(api_keys)
        .where(
            api_keys.c.id == key_id,
            sa.or_(
                api_keys.c.last_used_at.is_(None),
                api_keys.c.last_used_at < sa.func.now() - sa.text("interval '1 minute'"),
            ),
        )
        .values(last_used_at=sa.func.now())
    )


async def revoke(conn: Connection, key_id: uuid.UUID, user_id: int) -> Row | None:
    """Revoke one of the user's keys; the row (with its lookup id) or None."""
    return await conn.fetch_one(
        sa.update(api_keys)
        .where(
            api_keys.c.id == key_id,
            api_keys.c.user_id == user_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=sa.func.now())
        .returning(api_keys.c.id, api_keys.c.lookup_id)
    )
