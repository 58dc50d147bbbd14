"""Orders and their small state machine: received -> processing -> completed | failed.

Each transition is one conditional UPDATE from the expected state, so replaying a message
never moves an order backwards or twice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from storage.db import Connection, Row
from storage.tables import orders


def _history(status: str) -> Any:
    entry = sa.func.jsonb_build_object("status", status, "at", sa.func.now())
    return orders.c.history + sa.func.jsonb_build_array(entry)


async def receive(
    conn: Connection, *, order_id: int, user_id: int, items: Any, total: Decimal | None
) -> Row | None:
    """Create the order as received; None if it already exists."""
    return await conn.fetch_one(
        insert(orders)
        .values(
            id=order_id,
            user_id=user_id,
            items=items,
            total=total,
            history=sa.func.jsonb_build_array(
                sa.func.jsonb_build_object("status", "received", "at", sa.func.now())
            ),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(orders)
    )


async def move(
    conn: Connection,
    order_id: int,
    *,
    from_status: str,
    to_status: str,
    result: Any = None,
    error: str | None = None,
) -> Row | None:
    return await conn.fetch_one(
        sa.update(orders)
        .where(orders.c.id == order_id, orders.c.status == from_status)
        .values(
            status=to_status,
            result=result,
            error=error,
            history=_history(to_status),
            updated_at=sa.func.now(),
        )
        .returning(orders)
    )


async def get(conn: Connection, order_id: int) -> Row | None:
    return await conn.fetch_one(sa.select(orders).where(orders.c.id == order_id))
