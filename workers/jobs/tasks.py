"""The example task (the seed's TaskIQ example): sleep `seconds`, then store a result.

Completion is recorded exactly once: `start` and `finish` are conditional updates, so a
redelivered message for a finished task does nothing."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from storage import tasks
from storage.db import transaction
from workers.jobs.context import JobContext, JobMessage, PoisonMessage

log = logging.getLogger(__name__)


async def run_example(ctx: JobContext, message: JobMessage) -> None:
    try:
        task_id = uuid.UUID(str(message.body["task_id"]))
    except (KeyError, ValueError) as error:
        raise PoisonMessage(f"example task without a valid task_id: {error}") from None
    async with transaction(ctx.pool) as conn:
        task = await tasks.start(conn, task_id)
    if task is None:
        log.info("task %s already finished or unknown; dropping the duplicate", task_id)
        return
    payload = task["payload"] or {}
    seconds = float(payload.get("seconds", 0))
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    result = {
        "echo": payload.get("payload"),
        "slept_seconds": round(time.perf_counter() - started, 3),
        "attempt": task["attempts"],
    }
    async with transaction(ctx.pool) as conn:
        await tasks.finish(conn, task_id, result=result)
    log.info("task %s succeeded", task_id)
