"""POST /messaging/batch: up to MAX_BATCH messages of any kinds in one request, stored with
their outbox rows in one statement (the same acceptor as the single-message endpoints).

The whole body is validated first: one invalid message is 422 and nothing is stored. Then
each message gets its own result, in order: `{message_id, duplicate}`, or `{error}` when
only that message could not be accepted (its idempotency key was used for another request,
it is too large for the worker, its `user_id` names no user: `unknown_user`); the others are
stored all the same.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Annotated, Literal, Union

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, create_model

from handlers.http import json_response
from handlers.messaging import MAX_IDEMPOTENCY_KEY, PUBLISH
from handlers.openapi import endpoint
from server.kernel.errors import IntegrityViolation, InvalidData
from server.kernel.principal import Principal
from workers.broker.kinds import MESSAGE_KINDS
from workers.broker.payloads import Payload
from workers.messaging.acceptor import (
    IdempotencyConflict,
    MessageTooLarge,
    UnknownUser,
    acceptor_key,
)

MAX_BATCH = 500


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    idempotency_key: str | None = Field(None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY)
    kind: str
    payload: Payload


# One item model per kind of the messaging API (UserNotificationItem, ...): `kind` is the
# discriminator, so a bad payload is reported under its kind.
_ITEMS = tuple(
    create_model(
        f"{model.__name__}Item",
        __base__=_Item,
        kind=(Literal[kind.name], ...),
        payload=(model, ...),
    )
    for model, kind in MESSAGE_KINDS.items()
)
if TYPE_CHECKING:  # what every item is; the union of the models above is built at run time
    BatchItem = _Item
else:
    BatchItem = Annotated[Union[_ITEMS], Field(discriminator="kind")]  # noqa: UP007


class MessageBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)


class ItemError(BaseModel):
    code: str
    message: str


class ItemResult(BaseModel):
    message_id: uuid.UUID | None = None
    duplicate: bool | None = None
    error: ItemError | None = None


class BatchAccepted(BaseModel):
    accepted: int
    failed: int
    results: list[ItemResult]


@endpoint(
    summary="Send several messages at once",
    tags=["messaging"],
    body=MessageBatch,
    auth=PUBLISH,
    response=BatchAccepted,
    status=202,
    description=(
        f"Up to {MAX_BATCH} messages of any kinds (`kind` + `payload` as in the single "
        "endpoints, and an optional `idempotency_key` each), stored in one statement. "
        "One result per message, in order: `message_id` and `duplicate`, or `error` for a "
        "message that alone could not be accepted (`unknown_user`: its `user_id` names no "
        "user; nothing is stored for it)."
    ),
)
async def send_batch(
    request: web.Request, body: MessageBatch, principal: Principal
) -> web.Response:
    acceptor = request.app[acceptor_key]

    async def one(item: _Item) -> ItemResult:
        try:
            accepted = await acceptor.accept(
                item.kind,
                item.payload,
                created_by=principal.user_id,
                idempotency_key=item.idempotency_key,
            )
        except IdempotencyConflict as error:
            return ItemResult(error=ItemError(code="idempotency_conflict", message=str(error)))
        except MessageTooLarge as error:
            return ItemResult(error=ItemError(code="message_too_large", message=str(error)))
        except UnknownUser as error:
            return ItemResult(error=ItemError(code="unknown_user", message=str(error)))
        except (IntegrityViolation, InvalidData):
            return ItemResult(
                error=ItemError(code="not_stored", message="the database refused this message")
            )
        return ItemResult(message_id=accepted.message_id, duplicate=not accepted.created)

    results = await asyncio.gather(*(one(item) for item in body.messages))
    failed = sum(result.error is not None for result in results)
    return json_response(
        BatchAccepted(accepted=len(results) - failed, failed=failed, results=list(results)),
        status=202,
    )
