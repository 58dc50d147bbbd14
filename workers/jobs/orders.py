"""Order processing: a small state machine, the owner notified at each step.

    created:   received -> processing -> completed (result: item count and computed total)
                                     \\-> failed    (the items do not add up to `total`)
    cancelled: received|processing -> failed (error "cancelled")
    other actions: the order (if new) is received, then failed with "unknown action"

Each step is its own transaction with a conditional transition, so a redelivered message
resumes where the order stands and never repeats a step; the inbox row is written with the
last step.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from storage import orders, users
from storage.db import Connection, Row, transaction
from workers.broker.payloads import OrderProcessing
from workers.jobs.common import first_time, payload_of, push
from workers.jobs.context import JobContext, JobMessage, PoisonMessage


def _event(row: Row) -> dict[str, Any]:
    return {
        "kind": "order",
        "order_id": row["id"],
        "status": row["status"],
        "result": row["result"],
        "error": row["error"],
        "updated_at": row["updated_at"].isoformat(),
    }


async def _step(
    ctx: JobContext, order_id: int, from_status: str, to_status: str, **values: Any
) -> Row | None:
    async with transaction(ctx.pool) as conn:
        row = await orders.move(
            conn, order_id, from_status=from_status, to_status=to_status, **values
        )
    if row is not None:
        await push(ctx, f"user:{row['user_id']}", _event(row))
    return row


def _outcome(payload: OrderProcessing) -> tuple[str, dict[str, Any] | None, str | None]:
    items = payload.items or []
    computed = sum((item.price * item.quantity for item in items), Decimal(0))
    result = {"items": sum(item.quantity for item in items), "total": str(computed)}
    if payload.total is not None and items and computed != payload.total:
        return "failed", result, f"items add up to {computed}, not {payload.total}"
    return "completed", result, None


async def _finish(
    conn: Connection, message: JobMessage, order_id: int, to_status: str, **values: Any
) -> Row | None:
    """The last transition, with the inbox row: both or neither."""
    assert message.message_id is not None
    if not await first_time(conn, message, message.message_id):
        return None
    current = await orders.get(conn, order_id)
    if current is None or current["status"] in ("completed", "failed"):
        return None
    return await orders.move(
        conn, order_id, from_status=current["status"], to_status=to_status, **values
    )


async def process(ctx: JobContext, message: JobMessage) -> None:
    _, payload = payload_of(message)
    assert isinstance(payload, OrderProcessing)
    async with transaction(ctx.pool) as conn:
        if await users.get(conn, payload.user_id) is None:
            raise PoisonMessage(f"user {payload.user_id} does not exist")
        created = await orders.receive(
            conn,
            order_id=payload.order_id,
            user_id=payload.user_id,
            items=[item.model_dump(mode="json") for item in payload.items or []],
            total=payload.total,
        )
        current = created or await orders.get(conn, payload.order_id)
    assert current is not None
    if current["user_id"] != payload.user_id:
        raise PoisonMessage(f"order {payload.order_id} belongs to another user")
    if created is not None:
        await push(ctx, f"user:{created['user_id']}", _event(created))

    if payload.action == "created":
        if current["status"] == "received":
            await _step(ctx, payload.order_id, "received", "processing")
        status, result, error = _outcome(payload)
        values: dict[str, Any] = {"result": result, "error": error}
    elif payload.action == "cancelled":
        status, values = "failed", {"error": "cancelled"}
    else:
        status, values = "failed", {"error": f"unknown action {payload.action!r}"}
    async with transaction(ctx.pool) as conn:
        row = await _finish(conn, message, payload.order_id, status, **values)
    if row is not None:
        await push(ctx, f"user:{row['user_id']}", _event(row))
