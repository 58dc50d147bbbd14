"""/messaging: accept messages for the worker (stored with their outbox row in one
transaction, so accepting never depends on RabbitMQ being up), and report the pipeline's
health. Callers: admins, or admins' API keys with the `messaging` scope.

A message for a user who does not exist (user notification, order) is refused with 404
`unknown_user` (as POST /realtime/notifications/send does) before anything is stored: the
worker could never process it."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from handlers.http import json_response
from handlers.messaging_health import collect
from handlers.openapi import Handler, endpoint
from server.kernel.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from server.kernel.principal import Access, Principal, Role
from workers.broker.kinds import KINDS, payload_model
from workers.broker.payloads import Payload
from workers.messaging.acceptor import (
    IdempotencyConflict,
    MessageTooLarge,
    UnknownUser,
    acceptor_key,
)

PUBLISH = Access(role=Role.admin, scope="messaging")
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
    try:
        accepted = await request.app[acceptor_key].accept(
            kind, body, created_by=principal.user_id, idempotency_key=key
        )
    except IdempotencyConflict as error:
        raise Conflict(str(error), code="idempotency_conflict") from None
    except MessageTooLarge as error:
        raise PayloadTooLarge(str(error), code="message_too_large") from None
    except UnknownUser as error:
        raise unknown_user(error) from None
    return json_response(
        MessageAccepted(message_id=accepted.message_id, duplicate=not accepted.created), status=202
    )


def unknown_user(error: UnknownUser) -> NotFound:
    """404 `unknown_user`, pointing at the payload's `user_id`."""
    return NotFound(
        str(error),
        code="unknown_user",
        details=[{"loc": ["user_id"], "message": str(error), "type": "unknown_user"}],
    )


DOC = (
    "Stored with its outbox row and answered at once; the worker processes it exactly once. "
    "Send `Idempotency-Key` to make a retried call return the first `message_id`. "
    "A `user_id` that names no user is refused (404 `unknown_user`) and nothing is stored, "
    "unless the `Idempotency-Key` was used already: the key wins (the first `message_id`, "
    "or 409 `idempotency_conflict` for a different request)."
)


def _accepting(kind: str) -> Handler:
    """The endpoint that accepts messages of one kind (workers/broker/kinds.py)."""

    async def accept_one(request: web.Request, body: Payload, principal: Principal) -> web.Response:
        return await _accept(request, kind, body, principal)

    accept_one.__name__ = accept_one.__qualname__ = kind  # the OpenAPI operationId
    return endpoint(
        summary=KINDS[kind].summary,
        tags=["messaging"],
        body=payload_model(kind),
        auth=PUBLISH,
        response=MessageAccepted,
        status=202,
        errors=[404, 409],
        description=DOC,
    )(accept_one)


user_notification = _accepting("user_notification")
admin_notification = _accepting("admin_notification")
order_processing = _accepting("order_processing")
system_event = _accepting("system_event")


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
    auth=PUBLISH,
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
