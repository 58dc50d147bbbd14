"""The payload models of the message kinds (workers/broker/kinds.py): what the messaging API
validates, the outbox carries as `{"type": kind, "payload": ...}` and the worker's jobs
decode again."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


USER_ID_DOC = "An existing user's id: a user that does not exist is refused (404 unknown_user)."


class UserNotification(Payload):
    user_id: int = Field(ge=1, le=2**63 - 1, description=USER_ID_DOC)
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
    user_id: int = Field(ge=1, le=2**63 - 1, description=USER_ID_DOC)
    action: str = Field(min_length=1, max_length=50, description="created or cancelled")
    items: list[OrderItem] | None = Field(None, max_length=1000)
    total: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)


class SystemEvent(Payload):
    event_name: str = Field(min_length=1, max_length=200)
    event_data: JsonValue = None
    severity: Literal["debug", "info", "warning", "error", "critical"] = "info"
