"""What the messaging jobs share: payload decoding, the exactly-once guard, live pushes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from redis.exceptions import RedisError

from storage import messages
from storage.db import Connection
from workers.broker.kinds import payload_model
from workers.broker.payloads import Payload
from workers.jobs.context import JobContext, JobMessage, PoisonMessage

log = logging.getLogger(__name__)


def payload_of(message: JobMessage) -> tuple[uuid.UUID, Payload]:
    if message.message_id is None:
        raise PoisonMessage("message without a message_id")
    try:
        payload = payload_model(message.type).model_validate(message.body.get("payload"))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise PoisonMessage(f"invalid {message.type} payload: {problems}") from None
    return message.message_id, payload


async def first_time(conn: Connection, message: JobMessage, message_id: uuid.UUID) -> bool:
    """Inside the effect's transaction: False when this message was already processed."""
    return await messages.first_time(conn, message_id, message.concern)


async def push(ctx: JobContext, channel: str, data: Mapping[str, Any]) -> None:
    """Live delivery after the commit. The stored record is the truth; if Redis is down the
    user still finds it in their notifications and the channel's history misses it."""
    try:
        await ctx.publisher.publish_value(channel, data)
    except (RedisError, OSError) as error:
        log.warning("could not push to %s: %s", channel, error)
