"""MessageClient: the seed's Python API for sending messages, from any script or service.

    client = get_message_client()            # or MessageClient(settings)
    async with client.session():
        await client.send_user_notification(user_id=123, message="Your order is ready")

Messages go through the same transactional outbox as the HTTP API: each call stores the
message and its outbox row in one transaction and returns its id; a server process's relay
publishes it to RabbitMQ (so a broker outage delays, but never loses, what you sent).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from server.kernel.settings import Settings, load_settings
from storage.db import Pool, create_pool, transaction
from workers.broker.kinds import MESSAGE_KINDS
from workers.broker.payloads import (
    AdminNotification,
    OrderItem,
    OrderProcessing,
    Payload,
    SystemEvent,
    UserNotification,
)
from workers.broker.topology import Topology
from workers.messaging.acceptor import accept


class MessageClient:
    def __init__(self, settings: Settings | None = None, *, created_by: int | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.created_by = created_by  # the user the messages are recorded as sent by
        self.topology = Topology.from_settings(self.settings)
        self._pool: Pool | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MessageClient]:
        async with create_pool(self.settings) as pool:
            self._pool = pool
            try:
                yield self
            finally:
                self._pool = None

    async def _send(self, payload: Payload, idempotency_key: str | None) -> uuid.UUID:
        if self._pool is None:
            raise RuntimeError("use `async with client.session():` around sends")
        async with transaction(self._pool) as conn:
            accepted = await accept(
                conn,
                self.topology,
                MESSAGE_KINDS[type(payload)].name,
                payload,
                created_by=self.created_by,
                idempotency_key=idempotency_key,
            )
        return accepted.message_id

    async def send_user_notification(
        self,
        user_id: int,
        message: str,
        notification_type: str = "info",
        data: Any = None,
        *,
        idempotency_key: str | None = None,
    ) -> uuid.UUID:
        payload = UserNotification(
            user_id=user_id,
            message=message,
            notification_type=notification_type,
            data=data,
        )
        return await self._send(payload, idempotency_key)

    async def send_admin_notification(
        self,
        message: str,
        severity: str = "info",
        data: Any = None,
        *,
        idempotency_key: str | None = None,
    ) -> uuid.UUID:
        payload = AdminNotification(message=message, severity=severity, data=data)
        return await self._send(payload, idempotency_key)

    async def send_order_processing(
        self,
        order_id: int,
        user_id: int,
        action: str,
        items: list[dict[str, Any]] | None = None,
        total: Decimal | float | str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> uuid.UUID:
        payload = OrderProcessing(
            order_id=order_id,
            user_id=user_id,
            action=action,
            items=[OrderItem.model_validate(item) for item in items] if items is not None else None,
            total=Decimal(str(total)) if total is not None else None,
        )
        return await self._send(payload, idempotency_key)

    async def send_system_event(
        self,
        event_name: str,
        event_data: Any = None,
        severity: str = "info",
        *,
        idempotency_key: str | None = None,
    ) -> uuid.UUID:
        payload = SystemEvent(event_name=event_name, event_data=event_data, severity=severity)
        return await self._send(payload, idempotency_key)


def get_message_client(settings: Settings | None = None) -> MessageClient:
    """A new client (settings from the environment unless given), as in the seed."""
    return MessageClient(settings)
