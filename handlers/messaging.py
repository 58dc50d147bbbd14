"""/messaging: accept messages for the worker (stored with their outbox row in one
transaction, so accepting never depends on RabbitMQ being up), and report the pipeline's
health. Callers: admins, or API keys with the `messaging` scope."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from handlers.messaging_health import collect
from server import keys
from server.auth.principal import Access, Principal, Role
from server.errors import BadRequest, Conflict, PayloadTooLarge
from server.http import json_response
from server.openapi import endpoint
from storage.db import connect
from workers.messages import (
    AdminNotification,
    IdempotencyConflict,
    MessageTooLarge,
    OrderProcessing,
    Payload,
    SystemEvent,
    UserNotification,
    accept,
)
from workers.topology import Topology

PUBLISH = Access(role=Role.admin, scope="messaging", api_key_role=Role.user)
MAX_IDEMPOTENCY_KEY = 200


class MessageAccepted(BaseModel):
    message_id: uuid.UUID
    duplicate: bool


async def _accept(
    request: web.Request, kind: str, body: Payload, principal: Principal
) -> web.Response:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise BadRequest(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters",
            code="bad_idempotency_key",
        )
    settings = request.app[keys.settings]
    try:
        async with connect(request.app[keys.db]) as conn:  # one statement: no BEGIN/COMMIT
            accepted = await accept(
                conn,
                Topology.from_settings(settings),
                kind,
                body,
                created_by=principal.user_id,
                idempotency_key=key,
            )
    except IdempotencyConflict as error:
        raise Conflict(str(error), code="idempotency_conflict") from None
    except MessageTooLarge as error:
        raise PayloadTooLarge(str(error), code="message_too_large") from None
    return json_response(
        MessageAccepted(message_id=accepted.message_id, duplicate=not accepted.created), status=202
    )


DOC = (
    "Stored with its outbox row and answered at once; the worker processes it exactly once. "
    "Send `Idempotency-Key` to make a retried call return the first `message_id`."
)


@endpoint(
    summary="Notify a user",
    tags=["messaging"],
    body=UserNotification,
    auth=PUBLISH,
    response=MessageAccepted,
    status=202,
    errors=[409],
    description=DOC,
)
async def user_notification(
    request: web.Request, body: UserNotification, principal: Principal
) -> web.Response:
    return await _accept(request, "user_notification", body, principal)


@endpoint(
    summary="Notify every admin",
    tags=["messaging"],
    body=AdminNotification,
    auth=PUBLISH,
    response=MessageAccepted,
    status=202,
    errors=[409],
    description=DOC,
)
async def admin_notification(
    request: web.Request, body: AdminNotification, principal: Principal
) -> web.Response:
    return await _accept(request, "admin_notification", body, principal)


@endpoint(
    summary="Process an order",
    tags=["messaging"],
    body=OrderProcessing,
    auth=PUBLISH,
    response=MessageAccepted,
    status=202,
    errors=[409],
    description=DOC,
)
async def order_processing(
    request: web.Request, body: OrderProcessing, principal: Principal
) -> web.Response:
    return await _accept(request, "order_processing", body, principal)


@endpoint(
    summary="Record a system event",
    tags=["messaging"],
    body=SystemEvent,
    auth=PUBLISH,
    response=MessageAccepted,
    status=202,
    errors=[409],
    description=DOC,
)
async def system_event(
    request: web.Request, body: SystemEvent, principal: Principal
) -> web.Response:
    return await _accept(request, "system_event", body, principal)


class MessagingHealth(BaseModel):
    status: str
    broker: dict[str, Any]
    queues: dict[str, Any]
    outbox: dict[str, Any]
    workers: list[dict[str, Any]]
    last_heartbeat_age_seconds: float | None


@endpoint(
    summary="Messaging pipeline health",
    tags=["messaging"],
    response=MessagingHealth,
    auth=Access(role=Role.admin, scope="messaging", api_key_role=Role.user),
)
async def health(request: web.Request, principal: Principal) -> web.Response:
    """Broker connection, per-queue ready and in-flight counts, dead letters, the outbox
    backlog and its oldest age, and every worker's last heartbeat. `status` is `ok`, or
    `degraded` naming what is wrong."""
    report = await collect(request.app)
    report["last_heartbeat_age_seconds"] = min(
        (time.time() - w["at"] for w in report["workers"]), default=None
    )
    return json_response(MessagingHealth.model_validate(report))
