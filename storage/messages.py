"""Accepted messages and the worker's inbox of processed ids."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from storage.db import Connection, Row
from storage.tables import messages, processed_messages


async def accept(
    conn: Connection,
    *,
    message_id: uuid.UUID,
    kind: str,
    payload: Any,
    created_by: int | None,
    idempotency_key: str | None,
    request_hash: str | None,
) -> Row | None:
    """Record a new message; None when this caller already used the idempotency key (then
    `find_by_key` returns the first one)."""
    statement = insert(messages).values(
        id=message_id,
        kind=kind,
        payload=payload,
        created_by=created_by,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    if idempotency_key is not None:
        statement = statement.on_conflict_do_nothing(
            index_elements=["created_by", "idempotency_key"],
            index_where=sa.text("idempotency_key IS NOT NULL"),
        )
    return await conn.fetch_one(statement.returning(messages))


ACCEPT_AND_ENQUEUE = sa.text(
    """
    WITH m AS (
        INSERT INTO messages (id, kind, payload, created_by, idempotency_key, request_hash)
        VALUES (:id, :kind, CAST(:payload AS jsonb), :created_by, :idempotency_key,
                :request_hash)
        ON CONFLICT (created_by, idempotency_key) WHERE idempotency_key IS NOT NULL
        DO NOTHING
        RETURNING id
    ), o AS (
        INSERT INTO outbox (message_id, exchange, routing_key, headers, body)
        SELECT id, :exchange, :routing_key, CAST(:headers AS jsonb), :body FROM m
        RETURNING 1
    )
    SELECT m.id, (SELECT count(*) FROM o) AS queued, pg_notify('outbox', '') FROM m
    """
)


async def accept_and_enqueue(
    conn: Connection,
    *,
    message_id: uuid.UUID,
    kind: str,
    payload_json: str,
    created_by: int | None,
    idempotency_key: str | None,
    request_hash: str,
    exchange: str,
    routing_key: str,
    headers_json: str,
    body: bytes,
) -> bool:
    """Record a message and its outbox row (and wake the relays) in ONE statement: one
    round trip, atomic even in autocommit. False when this sender already used the
    idempotency key (nothing was written)."""
    row = await conn.fetch_one(
        ACCEPT_AND_ENQUEUE,
        {
            "id": message_id,
            "kind": kind,
            "payload": payload_json,
            "created_by": created_by,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "exchange": exchange,
            "routing_key": routing_key,
            "headers": headers_json,
            "body": body,
        },
    )
    return row is not None


async def find_by_key(conn: Connection, created_by: int | None, idempotency_key: str) -> Row | None:
    return await conn.fetch_one(
        sa.select(messages).where(
            messages.c.created_by.is_not_distinct_from(created_by),
            messages.c.idempotency_key == idempotency_key,
        )
    )


async def get(conn: Connection, message_id: uuid.UUID) -> Row | None:
    return await conn.fetch_one(sa.select(messages).where(messages.c.id == message_id))


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


async def count_processed(conn: Connection, message_ids: list[uuid.UUID]) -> int:
    return int(
        await conn.fetch_value(
            sa.select(sa.func.count())
            .select_from(processed_messages)
            .where(processed_messages.c.message_id.in_(message_ids))
        )
    )
