"""Accepted messages and the worker's inbox of processed ids."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from storage import outbox
from storage.db import Connection, Row
from storage.sql import json_batch
from storage.tables import messages, processed_messages


@dataclass(frozen=True)
class NewMessage:
    """A message to record with its outbox entry (values already encoded)."""

    kind: str
    payload_json: str
    created_by: int | None
    idempotency_key: str | None
    request_hash: str
    entry: outbox.Entry  # its id is the message's id

    @property
    def id(self) -> uuid.UUID:
        return self.entry.message_id


# Every message of the batch, its outbox entry, and one wake-up for the relays, in ONE
# statement: atomic even in autocommit, one round trip and one commit for the whole batch
# (the batch is one JSON parameter, storage.sql.json_batch; the outbox part is
# storage/outbox.py's). A message whose sender already used its idempotency key is skipped
# (ON CONFLICT), also when two of the batch share a key: the first one in the batch wins.
ACCEPT_MANY = sa.text(  # built from storage/outbox.py's constants only: nothing to inject
    f"""
    WITH input AS (
        SELECT * FROM json_to_recordset(CAST(:batch AS json)) AS t(
            n int, kind text, payload jsonb, created_by bigint, idempotency_key text,
            request_hash text, {outbox.RECORD})
    ), m AS (
        INSERT INTO messages (id, kind, payload, created_by, idempotency_key, request_hash)
        SELECT message_id, kind, payload, created_by, idempotency_key, request_hash
        FROM input ORDER BY n
        ON CONFLICT (created_by, idempotency_key) WHERE idempotency_key IS NOT NULL
        DO NOTHING
        RETURNING id AS message_id
    ), o AS ({outbox.INSERT_FROM.format(rows="input", source="input JOIN m USING (message_id)")})
    SELECT m.message_id FROM m, (SELECT {outbox.WAKE}) AS wake
    """  # noqa: S608
)


async def accept_many(conn: Connection, batch: Sequence[NewMessage]) -> list[bool]:
    """Record the messages and their outbox entries (and wake the relays) in one statement.
    For each: False when its sender already used its idempotency key (nothing written)."""
    rows = await conn.fetch_all(
        ACCEPT_MANY,
        {
            "batch": json_batch(
                {
                    "kind": m.kind,
                    "payload": orjson.Fragment(m.payload_json),
                    "created_by": m.created_by,
                    "idempotency_key": m.idempotency_key,
                    "request_hash": m.request_hash,
                    **m.entry.record(),
                }
                for m in batch
            )
        },
    )
    written = {str(row["message_id"]) for row in rows}
    return [str(m.id) in written for m in batch]


async def find_by_key(conn: Connection, created_by: int | None, idempotency_key: str) -> Row | None:
    return await conn.fetch_one(
        sa.select(messages).where(
            messages.c.created_by.is_not_distinct_from(created_by),
            messages.c.idempotency_key == idempotency_key,
        )
    )


async def first_time(conn: Connection, message_id: uuid.UUID, queue: str) -> bool:
    """Record that `message_id` is processed, inside the caller's transaction; False when it
    already was (a redelivery: skip the effect)."""
    row = await conn.fetch_one(
        insert(processed_messages)
        .values(message_id=message_id, queue=queue)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(processed_messages.c.message_id)
    )
    if row is not None:
        await conn.execute(
            sa.update(messages)
            .where(messages.c.id == message_id)
            .values(status="processed", processed_at=sa.func.now())
        )
    return row is not None


async def mark_dead(conn: Connection, message_id: uuid.UUID, error: str) -> None:
    await conn.execute(
        sa.update(messages)
        .where(messages.c.id == message_id, messages.c.status == "accepted")
        .values(status="dead", last_error=error[:2000])
    )
