"""The transactional outbox: messages written with the change they announce (the one writer
is workers/messaging/outbox.py), published later by the relay (workers/messaging/relay.py).
Rows are claimed with FOR UPDATE SKIP LOCKED, so several server nodes never publish the same
row at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from storage.db import Connection, Row
from storage.sql import json_batch
from storage.tables import outbox

NOTIFY_CHANNEL = "outbox"


@dataclass(frozen=True)
class Entry:
    """One message for the relays to publish. `body` is UTF-8 (the JSON of the message)."""

    message_id: uuid.UUID
    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, str]

    def record(self) -> dict[str, Any]:
        """Its row for a json_batch read with RECORD."""
        return {
            "message_id": self.message_id,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "headers": self.headers,
            "body": self.body.decode(),
        }


# Every statement that writes the outbox (here, and storage/messages.py with the messages)
# reads its entries from a json_batch with these columns, inserts them with INSERT_FROM and
# selects WAKE: pg_notify is transactional, so the relays wake only if the rows commit.
RECORD = "message_id uuid, exchange text, routing_key text, headers jsonb, body text"
INSERT_FROM = """
    INSERT INTO outbox (message_id, exchange, routing_key, headers, body)
    SELECT {rows}.message_id, {rows}.exchange, {rows}.routing_key, {rows}.headers,
           convert_to({rows}.body, 'UTF8')
    FROM {source} ORDER BY {rows}.n
"""
WAKE = f"pg_notify('{NOTIFY_CHANNEL}', '')"

ADD = sa.text(  # built from this module's constants only: nothing to inject
    f"""
    WITH input AS (
        SELECT * FROM json_to_recordset(CAST(:batch AS json)) AS t(n int, {RECORD})
    ), o AS ({INSERT_FROM.format(rows="input", source="input")})
    SELECT {WAKE}
    """  # noqa: S608
)


async def add(conn: Connection, entry: Entry) -> None:
    """Queue one message inside the caller's transaction and wake the relays on commit."""
    await conn.execute(ADD, {"batch": json_batch([entry.record()])})


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
