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
from opentelemetry import propagate
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from storage import messages
from storage.db import Connection
from workers.topology import Topology

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


def request_hash(kind: str, payload: Payload) -> str:
    return hashlib.sha256(
        kind.encode() + b"\0" + orjson.dumps(payload.model_dump(mode="json"))
    ).hexdigest()


async def accept(
    conn: Connection,
    topology: Topology,
    kind: str,
    payload: Payload,
    *,
    created_by: int | None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Record the message and its outbox row: one statement, so it is atomic with or without
    a surrounding transaction. With an idempotency key, a repeat of the same request
    returns the first message's id."""
    spec = KINDS[kind]
    data = payload.model_dump(mode="json")
    size = len(orjson.dumps({"type": kind, "payload": data}))
    if size > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"the message is {size} bytes; at most {MAX_MESSAGE_BYTES}")
    digest = request_hash(kind, payload)
    message_id = uuid.uuid4()
    headers: dict[str, str] = {}
    propagate.inject(headers)  # W3C trace context, carried to the worker
    created = await messages.accept_and_enqueue(
        conn,
        message_id=message_id,
        kind=kind,
        payload_json=orjson.dumps(data).decode(),
        created_by=created_by,
        idempotency_key=idempotency_key,
        request_hash=digest,
        exchange=topology.exchange,
        routing_key=spec.concern,
        headers_json=orjson.dumps(headers).decode(),
        body=orjson.dumps({"type": kind, "payload": data}),
    )
    if not created:
        assert idempotency_key is not None
        first = await messages.find_by_key(conn, created_by, idempotency_key)
        assert first is not None
        if first["request_hash"] != digest:
            raise IdempotencyConflict("this Idempotency-Key was used for a different request")
        return Accepted(first["id"], created=False)
    return Accepted(message_id, created=True)


def decode_payload(kind: str, raw: Any) -> Payload:
    return KINDS[kind].model.model_validate(raw)
