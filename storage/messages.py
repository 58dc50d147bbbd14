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
    user_id: int | None = None  # the user it is for, who must exist (None: no such user)

    @property
    def id(self) -> uuid.UUID:
        return self.entry.message_id


# Every message of the batch, its outbox entry, and one wake-up for the relays, in ONE
# statement: atomic even in autocommit, one round trip and one commit for the whole batch
# (the batch is one JSON parameter, storage.sql.json_batch; the outbox part is
# storage/outbox.py's). A message whose sender already used its idempotency key is skipped
# (ON CONFLICT), also when two of the batch share a key: the first one in the batch wins.
# A message for a user that does not exist is skipped too (one primary-key probe each, in
# the same statement; a user deleted after it commits is the worker's permanent error),
# unless its key is already taken, by a stored message or an earlier one of the batch for
# an existing user: the key wins, so a retry gets the first message_id (or 409 when it asks
# something else) even if that user has been deleted since.
ACCEPT_MANY = sa.text(  # built from storage/outbox.py's constants only: nothing to inject
    f"""
    WITH input AS (
        SELECT *, user_id IS NULL
               OR EXISTS (SELECT 1 FROM users WHERE users.id = t.user_id) AS user_exists
        FROM json_to_recordset(CAST(:batch AS json)) AS t(
            n int, kind text, payload jsonb, created_by bigint, idempotency_key text,
            request_hash text, user_id bigint, {outbox.RECORD})
    ), unknown AS (
        SELECT n FROM input
        WHERE NOT user_exists
          AND NOT EXISTS (
              SELECT 1 FROM messages
              WHERE messages.idempotency_key = input.idempotency_key
                AND (messages.created_by = input.created_by
                     OR messages.created_by IS NULL AND input.created_by IS NULL))
          AND NOT EXISTS (
              SELECT 1 FROM input AS earlier
              WHERE earlier.n < input.n AND earlier.user_exists
                AND earlier.idempotency_key = input.idempotency_key
                AND earlier.created_by IS NOT DISTINCT FROM input.created_by)
    ), m AS (
        INSERT INTO messages (id, kind, payload, created_by, idempotency_key, request_hash)
        SELECT message_id, kind, payload, created_by, idempotency_key, request_hash
        FROM input WHERE n NOT IN (SELECT n FROM unknown) ORDER BY n
        ON CONFLICT (created_by, idempotency_key) WHERE idempotency_key IS NOT NULL
        DO NOTHING
        RETURNING id AS message_id
    ), o AS ({outbox.INSERT_FROM.format(rows="input", source="input JOIN m USING (message_id)")})
    SELECT m.message_id, false AS unknown_user FROM m, (SELECT {outbox.WAKE}) AS wake
    UNION ALL
    SELECT input.message_id, true FROM input JOIN unknown USING (n)
    """  # noqa: S608
)


async def accept_many(conn: Connection, batch: Sequence[NewMessage]) -> list[bool | None]:
    """Record the messages and their outbox entries (and wake the relays) in one statement.
    For each: True when written; False when its sender already used its idempotency key,
    None when the user it is for does not exist (nothing written for either)."""
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
                    "user_id": m.user_id,
                    **m.entry.record(),
                }
                for m in batch
            )
        },
    )
    outcome: dict[str, bool | None] = {
        str(row["message_id"]): None if row["unknown_user"] else True for row in rows
    }
    return [outcome.get(str(m.id), False) for m in batch]


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
