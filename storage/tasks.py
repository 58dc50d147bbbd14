"""Background task records: created queued by the API, moved along by the worker.

Every transition is one conditional UPDATE, so a redelivered message can never run a
finished task again."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from storage.db import Connection, Row
from storage.tables import tasks


async def create(
    conn: Connection, task_id: uuid.UUID, name: str, payload: Any, *, owner_id: int | None
) -> Row:
    row = await conn.fetch_one(
        sa.insert(tasks)
        .values(id=task_id, name=name, payload=payload, owner_id=owner_id)
        .returning(tasks)
    )
    assert row is not None
    return row


async def get(conn: Connection, task_id: uuid.UUID) -> Row | None:
    return await conn.fetch_one(sa.select(tasks).where(tasks.c.id == task_id))


async def start(conn: Connection, task_id: uuid.UUID) -> Row | None:
    """Mark a task running; None when it is unknown or already finished (a duplicate).

    A task found `running` is taken again: its earlier run died before committing."""
    return await conn.fetch_one(
        sa.update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.in_(("queued", "running")))
        .values(status="running", started_at=sa.func.now(), attempts=tasks.c.attempts + 1)
        .returning(tasks)
    )


async def finish(conn: Connection, task_id: uuid.UUID, *, result: Any) -> Row | None:
    """Record the result once; None if the task was already finished."""
    return await conn.fetch_one(
        sa.update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == "running")
        .values(status="succeeded", result=result, finished_at=sa.func.now())
        .returning(tasks)
    )
