"""RabbitMQ itself stopped and started (`rabbitmqctl stop_app` / `start_app`) while tasks are
queued: the relay and the worker reconnect and every task completes exactly once."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import pytest

from storage.db import transaction
from tests.support.waiting import eventually

pytestmark = [pytest.mark.usefixtures("clean_tables"), pytest.mark.disruptive, pytest.mark.slow]


def rabbitmqctl(ctl: str, action: str) -> None:
    subprocess.run([ctl, action], check=True, capture_output=True, timeout=120)


async def test_every_task_completes_once_across_a_broker_restart(
    user_client: Any, worker: Any, db: Any, rabbitmq_ctl: str
) -> None:
    ids = []
    for n in range(40):
        response = await user_client.post("/tasks/example", json={"seconds": 0.2, "payload": n})
        ids.append((await response.json())["id"])

    await asyncio.to_thread(rabbitmqctl, rabbitmq_ctl, "stop_app")
    try:
        # Accepting work does not depend on the broker.
        for n in range(40, 60):
            response = await user_client.post("/tasks/example", json={"seconds": 0, "payload": n})
            assert response.status == 202
            ids.append((await response.json())["id"])
        await asyncio.sleep(1)
    finally:
        await asyncio.to_thread(rabbitmqctl, rabbitmq_ctl, "start_app")

    async def all_finished() -> list[dict[str, Any]] | None:
        async with transaction(db) as conn:
            rows = await conn.fetch_all(
                "SELECT status, result, finished_at FROM tasks WHERE id = ANY(%(ids)s::uuid[])",
                {"ids": ids},
            )
        return rows if all(row["status"] == "succeeded" for row in rows) else None

    rows = await eventually(all_finished, timeout=90, interval=1)
    assert len(rows) == 60
    assert sorted(row["result"]["echo"] for row in rows) == list(range(60))
    assert worker.amqp.connects >= 2  # it really reconnected
