"""The transactional outbox: messages written with the change they announce, published
later by the relay (workers/messaging/relay.py). Rows are claimed with FOR UPDATE SKIP LOCKED, so
several server nodes never publish the same row at once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from storage.db import Connection, Row
from storage.tables import outbox

NOTIFY_CHANNEL = "outbox"


async def add(
    conn: Connection,
    *,
    message_id: uuid.UUID,
    exchange: str,
    routing_key: str,
    body: bytes,
    headers: dict[str, Any] | None = None,
    content_type: str = "application/json",
) -> None:
    """Queue a message inside the caller's transaction and wake the relays on commit."""
    await conn.execute(
        sa.insert(outbox).values(
            message_id=message_id,
            exchange=exchange,
            routing_key=routing_key,
            body=body,
            headers=headers or {},
            content_type=content_type,
        )
    )
    # NOTIFY is transactional: relays hear it only if the transaction commits.
    await conn.execute(sa.text(f"NOTIFY {NOTIFY_CHANNEL}"))


async def claim(conn: Connection, limit: int) -> list[Row]:
    """Lock up to `limit` due rows for this transaction; other relays skip them."""
    return await conn.fetch_all(
        sa.select(outbox)
        .where(outbox.c.available_at <= sa.func.now())
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


async def delete(conn: Connection, ids: list[int]) -> None:
    """Remove published rows. Their transaction commits without waiting for the WAL flush
    (synchronous_commit off, for this transaction only): should PostgreSQL crash and lose
    the deletion, the rows are published again and the consumers' inbox drops the
    duplicates, which the outbox must survive anyway (a crash between publish and delete).
    The relay then never waits on a disk flush between two batches."""
    if ids:  # one array parameter: no per-id SQL expression to build and compile
        await conn.execute(
            "SET LOCAL synchronous_commit TO off; DELETE FROM outbox WHERE id = ANY(%(ids)s)",
            {"ids": ids},
        )


async def postpone(conn: Connection, row_id: int, error: str, delay: timedelta) -> None:
    """Count a failed attempt and make the row due again after `delay`."""
    await conn.execute(
        sa.update(outbox)
        .where(outbox.c.id == row_id)
        .values(
            attempts=outbox.c.attempts + 1,
            last_error=error[:1000],
            available_at=sa.func.now() + delay,
        )
    )


async def backlog(conn: Connection) -> tuple[int, float | None]:
    """How many rows wait, and the age in seconds of the oldest."""
    row = await conn.fetch_one(
        sa.select(
            sa.func.count().label("n"),
            sa.func.extract("epoch", sa.func.now() - sa.func.min(outbox.c.created_at)).label("age"),
        )
    )
    assert row is not None
    age = row["age"]
    return int(row["n"]), None if age is None else float(age)
