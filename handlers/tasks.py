"""POST /tasks/example and GET /tasks/{task_id}: the seed's background-task example, run by
the worker over RabbitMQ (through the outbox)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from handlers.http import json_response
from handlers.openapi import endpoint
from handlers.openapi_rules import at_most
from server.kernel.errors import NotFound
from server.kernel.principal import USER_READ, USER_WRITE, Principal, Role
from server.kernel.settings import settings_key
from storage import tasks
from storage.db import Row, db_key, transaction
from workers.broker.topology import Topology
from workers.messaging.outbox import enqueue


class ExampleTaskIn(BaseModel):
    seconds: Annotated[float, at_most("TASK_MAX_SECONDS")] = Field(
        1.0, ge=0, description="How long the task sleeps (at most TASK_MAX_SECONDS)."
    )
    payload: Any = Field(None, description="Any JSON value; the result echoes it.")


class TaskPath(BaseModel):
    task_id: uuid.UUID


class TaskOut(BaseModel):
    id: uuid.UUID
    name: str
    status: Literal["queued", "running", "succeeded", "failed"]
    result: Any = None
    error: str | None = None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    wait_seconds: float | None = Field(description="From created to started.")
    run_seconds: float | None = Field(description="From started to finished.")

    @classmethod
    def from_row(cls, row: Row) -> TaskOut:
        def between(start: datetime | None, end: datetime | None) -> float | None:
            return None if start is None or end is None else (end - start).total_seconds()

        return cls(
            **{k: row[k] for k in ("id", "name", "status", "result", "error", "attempts")},
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            wait_seconds=between(row["created_at"], row["started_at"]),
            run_seconds=between(row["started_at"], row["finished_at"]),
        )


@endpoint(
    summary="Enqueue the example task",
    tags=["tasks"],
    body=ExampleTaskIn,
    response=TaskOut,
    status=202,
    errors=[503],
    auth=USER_WRITE,
)
async def create_example(
    request: web.Request, body: ExampleTaskIn, principal: Principal
) -> web.Response:
    """Stores the task and its message in one transaction and answers at once; the worker
    sleeps `seconds`, then stores `{"echo": payload, ...}` as the result."""
    settings = request.app[settings_key]
    task_id = uuid.uuid4()
    async with transaction(request.app[db_key]) as conn:
        row = await tasks.create(
            conn, task_id, "example", body.model_dump(mode="json"), owner_id=principal.user_id
        )
        await enqueue(
            conn,
            Topology.from_settings(settings),
            "example",
            {"task_id": str(task_id)},
            message_id=task_id,
        )
    return json_response(
        TaskOut.from_row(row), status=202, headers={"Location": f"/tasks/{task_id}"}
    )


@endpoint(
    summary="A task's status, result and timings",
    tags=["tasks"],
    path=TaskPath,
    response=TaskOut,
    errors=[404],
    auth=USER_READ,
)
async def get_task(request: web.Request, path: TaskPath, principal: Principal) -> web.Response:
    """Your own tasks; admins see every task."""
    async with transaction(request.app[db_key]) as conn:
        row = await tasks.get(conn, path.task_id)
    visible = row is not None and (
        row["owner_id"] == principal.user_id or principal.is_at_least(Role.admin)
    )
    if row is None or not visible:
        raise NotFound(f"task {path.task_id} does not exist")
    return json_response(TaskOut.from_row(row))
