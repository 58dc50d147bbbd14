"""Which job runs a message: one job per kind of the kind table (workers/broker/kinds.py),
and a message runs only when it came from its kind's queue."""

from __future__ import annotations

from typing import Any

import orjson

from workers.broker.kinds import KINDS, MAX_MESSAGE_BYTES
from workers.jobs import events, notifications, orders, tasks
from workers.jobs.context import Job, PoisonMessage


def registry() -> dict[str, Job]:
    return {
        "example": tasks.run_example,
        "user_notification": notifications.user_notification,
        "admin_notification": notifications.admin_notification,
        "order_processing": orders.process,
        "system_event": events.system_event,
    }


def job_for(jobs: dict[str, Job], concern: str, raw: bytes) -> tuple[str, dict[str, Any], Job]:
    """The kind, decoded body and job of a message delivered from `concern`'s queue. Raises
    PoisonMessage for one no retry can help: too big, not a JSON object with a string
    `type`, or a type without a job on this queue."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise PoisonMessage(f"body of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise PoisonMessage(f"body is not JSON: {error}") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise PoisonMessage("body must be a JSON object with a string `type`")
    kind = KINDS.get(body["type"])
    job = jobs.get(body["type"])
    if job is None or kind is None or kind.concern != concern:
        raise PoisonMessage(f"no job handles type {body['type'][:100]!r} on {concern}")
    return body["type"], body, job
