"""The message kinds of the messaging API, their payload models (shared by the HTTP handlers,
MessageClient and the worker's jobs), and `accept()`: the one function that records a message
and its outbox row in the caller's transaction.

    kind                concern (queue)          payload
    user_notification   notifications.user       UserNotification
    admin_notification  notifications.admin      AdminNotification
    order_processing    orders                   OrderProcessing
    system_event        events.system            SystemEvent
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson
from aiohttp import web
from opentelemetry import propagate
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from server.kernel.errors import IntegrityViolation, InvalidData
from storage import messages
from storage.coalescer import Coalescer
from storage.db import Connection, Pool, connect
from workers.broker.topology import Topology

MAX_MESSAGE_BYTES = 256 * 1024


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserNotification(Payload):
    user_id: int = Field(ge=1, le=2**63 - 1)
    message: str = Field(min_length=1, max_length=5000)
    notification_type: Literal["info", "success", "warning", "error"] = "info"
    data: JsonValue = None


class AdminNotification(Payload):
    message: str = Field(min_length=1, max_length=5000)
    severity: Literal["info", "warning", "error", "critical"] = "info"
    data: JsonValue = None


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    sku: str | None = Field(None, max_length=100)
    quantity: int = Field(1, ge=1, le=1_000_000)
    price: Decimal = Field(Decimal(0), ge=0, max_digits=12, decimal_places=2)


class OrderProcessing(Payload):
    order_id: int = Field(ge=1, le=2**63 - 1)
    user_id: int = Field(ge=1, le=2**63 - 1)
    action: str = Field(min_length=1, max_length=50, description="created or cancelled")
    items: list[OrderItem] | None = Field(None, max_length=1000)
    total: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)


class SystemEvent(Payload):
    event_name: str = Field(min_length=1, max_length=200)
    event_data: JsonValue = None
    severity: Literal["debug", "info", "warning", "error", "critical"] = "info"


@dataclass(frozen=True)
class Kind:
    name: str
    concern: str
    model: type[Payload]


KINDS = {
    kind.name: kind
    for kind in (
        Kind("user_notification", "notifications.user", UserNotification),
        Kind("admin_notification", "notifications.admin", AdminNotification),
        Kind("order_processing", "orders", OrderProcessing),
        Kind("system_event", "events.system", SystemEvent),
    )
}


class MessageTooLarge(Exception):
    """The encoded message would exceed what the worker accepts (MAX_MESSAGE_BYTES)."""


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


@dataclass(frozen=True)
class Accepted:
    message_id: uuid.UUID
    created: bool  # False: the idempotency key matched an earlier message


def request_hash(kind: str, payload_json: bytes) -> str:
    """What makes two requests with one Idempotency-Key the same request."""
    return hashlib.sha256(kind.encode() + b"\0" + payload_json).hexdigest()


def prepare(
    topology: Topology,
    kind: str,
    payload: Payload,
    *,
    created_by: int | None,
    idempotency_key: str | None = None,
) -> messages.NewMessage:
    """The message and its outbox row, encoded, with a new id and the current trace context
    (carried to the worker). Raises MessageTooLarge."""
    data = payload.model_dump(mode="json")
    data_json = orjson.dumps(data)
    body = orjson.dumps({"type": kind, "payload": data})
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"the message is {len(body)} bytes; at most {MAX_MESSAGE_BYTES}")
    headers: dict[str, str] = {}
    propagate.inject(headers)  # W3C trace context
    return messages.NewMessage(
        id=uuid.uuid4(),
        kind=kind,
        payload_json=data_json.decode(),
        created_by=created_by,
        idempotency_key=idempotency_key,
        request_hash=request_hash(kind, data_json),
        exchange=topology.exchange,
        routing_key=KINDS[kind].concern,
        headers_json=orjson.dumps(headers).decode(),
        body=body,
    )


async def resolve(conn: Connection, new: messages.NewMessage, created: bool) -> Accepted:
    """The answer for a prepared message once the statement ran: itself, or (its idempotency
    key was used before) the first message with that key, if the request was the same."""
    if created:
        return Accepted(new.id, created=True)
    assert new.idempotency_key is not None
    first = await messages.find_by_key(conn, new.created_by, new.idempotency_key)
    assert first is not None
    if first["request_hash"] != new.request_hash:
        raise IdempotencyConflict("this Idempotency-Key was used for a different request")
    return Accepted(first["id"], created=False)


async def accept(
    conn: Connection,
    topology: Topology,
    kind: str,
    payload: Payload,
    *,
    created_by: int | None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Record one message and its outbox row in the caller's connection (one statement, so
    atomic with or without a surrounding transaction)."""
    new = prepare(topology, kind, payload, created_by=created_by, idempotency_key=idempotency_key)
    (created,) = await messages.accept_many(conn, [new])
    return await resolve(conn, new, created)


class Acceptor:
    """Accepts messages for a server: concurrent requests share one statement and one
    commit (group commit, storage/coalescer.py), so accepting costs the database little per
    message under load and adds no wait when idle."""

    def __init__(self, pool: Pool, topology: Topology) -> None:
        self._pool = pool
        self._topology = topology
        self._batches: Coalescer[messages.NewMessage, bool] = Coalescer(
            self._write, name="message-acceptor", isolate=(IntegrityViolation, InvalidData)
        )

    async def accept(
        self,
        kind: str,
        payload: Payload,
        *,
        created_by: int | None,
        idempotency_key: str | None = None,
    ) -> Accepted:
        new = prepare(
            self._topology, kind, payload, created_by=created_by, idempotency_key=idempotency_key
        )
        created = await self._batches.submit(new)
        if created:
            return Accepted(new.id, created=True)
        async with connect(self._pool) as conn:
            return await resolve(conn, new, created)

    async def _write(self, batch: list[messages.NewMessage]) -> list[bool]:
        async with connect(self._pool) as conn:
            return await messages.accept_many(conn, batch)


def decode_payload(kind: str, raw: Any) -> Payload:
    return KINDS[kind].model.model_validate(raw)


acceptor_key: web.AppKey[Acceptor] = web.AppKey("acceptor", Acceptor)
