"""/admin/api/dead-letters: browse, show, requeue and purge the dead-letter queues, as
`python -m workers dlq` does (both call workers/broker/dead_letters.py). Each call opens its
own short broker connection: these are rare, deliberate acts."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import aiormq
from aiohttp import web
from pydantic import BaseModel, Field

from handlers.admin_models import (
    CountOut,
    DeadLetterQuery,
    DeadLettersOut,
    PurgeIn,
    Queue,
    RequeueIn,
)
from handlers.admin_notices import announce
from handlers.http import json_response
from handlers.openapi import endpoint
from server.auth.schemas import Input
from server.kernel.errors import NotFound, ServiceUnavailable
from server.kernel.principal import ADMIN_READ, ADMIN_WRITE, Principal
from server.kernel.settings import settings_key
from workers.broker import dead_letters

T = TypeVar("T")


class MessagePath(Input):
    message_id: str = Field(min_length=1, max_length=200)


class MessageQuery(Input):
    queue: Queue | None = Field(None, description="One queue; none: look in every queue.")


class DeadLetterDetail(BaseModel):
    queue: str
    headers: dict[str, object]
    body: str


async def _broker(call: Awaitable[T]) -> T:
    try:
        return await call
    except (aiormq.exceptions.AMQPError, ConnectionError, OSError, TimeoutError) as error:
        raise ServiceUnavailable(f"RabbitMQ is unavailable: {type(error).__name__}") from None


@endpoint(
    summary="Dead letters: counts and the first messages of each queue",
    tags=["admin"],
    query=DeadLetterQuery,
    auth=ADMIN_READ,
    response=DeadLettersOut,
    errors=[503],
)
async def list_dead_letters(
    request: web.Request, query: DeadLetterQuery, principal: Principal
) -> web.Response:
    """Looking never loses a message: each is read and put back."""
    settings = request.app[settings_key]
    report = await _broker(dead_letters.list_dead(settings, query.queue, query.limit))
    return json_response(DeadLettersOut.model_validate({"queues": report}))


@endpoint(
    summary="One dead letter: its headers (x-error, x-attempts) and body",
    tags=["admin"],
    path=MessagePath,
    query=MessageQuery,
    auth=ADMIN_READ,
    response=DeadLetterDetail,
    errors=[404, 503],
)
async def show_dead_letter(
    request: web.Request, path: MessagePath, query: MessageQuery, principal: Principal
) -> web.Response:
    settings = request.app[settings_key]
    found = await _broker(dead_letters.show(settings, path.message_id, query.queue))
    if found is None:
        raise NotFound(f"no dead letter with message id {path.message_id}")
    return json_response(DeadLetterDetail.model_validate(found))


@endpoint(
    summary="Requeue dead letters (one, or all) to their work queue",
    tags=["admin"],
    body=RequeueIn,
    auth=ADMIN_WRITE,
    response=CountOut,
    errors=[404, 503],
)
async def requeue_dead_letters(
    request: web.Request, body: RequeueIn, principal: Principal
) -> web.Response:
    """With a fresh attempt count. `message_id` given and not found: 404."""
    settings = request.app[settings_key]
    moved = await _broker(dead_letters.requeue(settings, body.message_id, body.queue))
    if body.message_id is not None and moved == 0:
        raise NotFound(f"no dead letter with message id {body.message_id}")
    await announce(
        request.app, principal, "requeued", {"count": moved, "message_id": body.message_id}
    )
    return json_response(CountOut(count=moved))


@endpoint(
    summary="Purge dead letters for good",
    tags=["admin"],
    body=PurgeIn,
    auth=ADMIN_WRITE,
    response=CountOut,
    errors=[503],
)
async def purge_dead_letters(
    request: web.Request, body: PurgeIn, principal: Principal
) -> web.Response:
    settings = request.app[settings_key]
    purged = await _broker(dead_letters.purge(settings, body.queue))
    await announce(request.app, principal, "purged", {"count": purged, "queue": body.queue})
    return json_response(CountOut(count=purged))
