"""System events: stored once, then published on the admin-only `system` channel."""

from __future__ import annotations

from storage import system_events
from storage.db import transaction
from workers.broker.payloads import SystemEvent
from workers.jobs.common import first_time, payload_of, push
from workers.jobs.context import JobContext, JobMessage

SYSTEM_CHANNEL = "system"


async def system_event(ctx: JobContext, message: JobMessage) -> None:
    message_id, payload = payload_of(message)
    assert isinstance(payload, SystemEvent)
    async with transaction(ctx.pool) as conn:
        if not await first_time(conn, message, message_id):
            return
        row = await system_events.record(
            conn,
            message_id=message_id,
            event_name=payload.event_name,
            event_data=payload.event_data,
            severity=payload.severity,
        )
    if row is not None:
        await push(
            ctx,
            SYSTEM_CHANNEL,
            {
                "kind": "system_event",
                "id": row["id"],
                "event_name": row["event_name"],
                "event_data": row["event_data"],
                "severity": row["severity"],
                "created_at": row["created_at"].isoformat(),
            },
        )
