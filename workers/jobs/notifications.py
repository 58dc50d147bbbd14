"""User and admin notifications: stored (exactly once), then pushed live as notification
events (server/hub/notifications.py) to `user:<id>`, or to every admin's own channel and to
`admin:notifications` (one admin's event plus `severity`), and copied to linked Telegram
chats when the bots run (best effort).

The push is at least once: a worker that dies (or loses the broker) after the commit and
before the push never acks, so the message comes back, and a redelivered message that the
inbox knows as done pushes the stored notification again (without a second Telegram copy,
which no client could drop). Clients drop a repeated event by its notification `id`."""

from __future__ import annotations

from functools import partial

from server.hub.notifications import notification_event
from server.kernel import jsonutil
from storage import notifications
from storage.db import Row, connect, transaction
from workers.broker.payloads import AdminNotification, UserNotification
from workers.jobs.common import first_time, payload_of, push
from workers.jobs.context import JobContext, JobMessage

ADMIN_CHANNEL = "admin:notifications"


async def user_notification(ctx: JobContext, message: JobMessage) -> None:
    message_id, payload = payload_of(message)
    assert isinstance(payload, UserNotification)
    store = ctx.coalescer(f"store {message.concern}", partial(_store, ctx, message.concern))
    row = await store.submit(
        notifications.FromMessage(
            message_id=message_id,
            user_id=payload.user_id,
            title=payload.message[:200],
            body=payload.message,
            level=payload.notification_type,
            data_json=jsonutil.dumps(payload.data).decode(),
        )
    )
    if row is None:  # already processed: a redelivery, perhaps of a job that died unpushed
        async with connect(ctx.pool) as conn:
            stored = await notifications.of_message(conn, message_id, user_id=payload.user_id)
        for again in stored:
            await push(ctx, f"user:{payload.user_id}", notification_event(again))
        return
    await push(ctx, f"user:{payload.user_id}", notification_event(row))
    if ctx.telegram is not None:
        await ctx.telegram.notify([payload.user_id], payload.notification_type, payload.message)


async def _store(
    ctx: JobContext, queue: str, batch: list[notifications.FromMessage]
) -> list[Row | None]:
    """The notifications of every user_notification job running now, and their inbox rows,
    in one statement (one commit)."""
    async with connect(ctx.pool) as conn:
        return await notifications.create_once_many(conn, queue, batch)


async def admin_notification(ctx: JobContext, message: JobMessage) -> None:
    message_id, payload = payload_of(message)
    assert isinstance(payload, AdminNotification)
    level = {"critical": "error"}.get(payload.severity, payload.severity)
    async with transaction(ctx.pool) as conn:
        first = await first_time(conn, message, message_id)
        if first:
            rows = await notifications.create_for_admins(
                conn,
                title=payload.message[:200],
                body=payload.message,
                level=level,
                data=payload.data,
                message_id=message_id,
            )
        else:  # a redelivery, perhaps of a job that died before pushing
            rows = await notifications.of_admin_message(conn, message_id)
    await _push_to_admins(ctx, rows, payload.severity)
    if first and ctx.telegram is not None:
        admins = [row["user_id"] for row in rows]
        await ctx.telegram.notify(admins, payload.severity, payload.message)


async def _push_to_admins(ctx: JobContext, rows: list[Row], severity: str) -> None:
    for row in rows:
        await push(ctx, f"user:{row['user_id']}", notification_event(row))
    if rows:
        # The admins' shared channel gets one copy: no admin's own row or id in it.
        shared = {**notification_event(rows[0]), "user_id": None, "severity": severity}
        await push(ctx, ADMIN_CHANNEL, shared)
