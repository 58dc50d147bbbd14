"""The outbox writer: every message for the worker becomes an outbox entry here, routed by its
kind (workers/broker/kinds.py) and carrying the current W3C trace context in its headers, so
the worker's span continues the trace of the request that sent it.

The acceptor stores entries with their messages (storage/messages.py, group commit);
`enqueue` stores one alone, in the caller's transaction (the example task). The relay
publishes them later, so sending never depends on the broker being up."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from opentelemetry import propagate

from storage import outbox
from storage.db import Connection
from workers.broker.kinds import KINDS
from workers.broker.topology import Topology


def entry(
    topology: Topology, kind: str, fields: dict[str, Any], message_id: uuid.UUID
) -> outbox.Entry:
    """The outbox entry of the message `{"type": kind, **fields}`."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return outbox.Entry(
        message_id=message_id,
        exchange=topology.exchange,
        routing_key=KINDS[kind].concern,
        body=orjson.dumps({"type": kind, **fields}),
        headers=headers,
    )


async def enqueue(
    conn: Connection,
    topology: Topology,
    kind: str,
    fields: dict[str, Any],
    *,
    message_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Add one message inside the caller's transaction; return its id."""
    new = entry(topology, kind, fields, message_id or uuid.uuid4())
    await outbox.add(conn, new)
    return new.message_id
