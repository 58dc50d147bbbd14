"""The publisher side: put a job message into the outbox inside the caller's transaction.

The message reaches RabbitMQ later through the relay, so accepting work never depends on
the broker being up. W3C trace context travels in the message headers."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from opentelemetry import propagate

from storage import outbox
from storage.db import Connection
from workers.broker.topology import Topology


async def enqueue(
    conn: Connection,
    topology: Topology,
    concern: str,
    body: dict[str, Any],
    *,
    message_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Add one message for `concern`'s queue; return its message id."""
    message_id = message_id or uuid.uuid4()
    headers: dict[str, str] = {}
    propagate.inject(headers)
    await outbox.add(
        conn,
        message_id=message_id,
        exchange=topology.exchange,
        routing_key=concern,
        body=orjson.dumps(body),
        headers=headers,
    )
    return message_id
