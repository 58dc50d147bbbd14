"""RabbitMQ itself stopped and started (`rabbitmqctl stop_app` / `start_app`) while tasks are
queued: the relay and the worker reconnect and every task completes exactly once, with
classic queues and with quorum queues (AMQP_QUEUE_TYPE; each on its own queue names)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiormq
import pytest

from server.kernel.settings import Settings
from storage.db import transaction
from tests.conftest import make_settings
from tests.support.waiting import eventually
from workers.broker.topology import Topology

pytestmark = [pytest.mark.usefixtures("clean_tables"), pytest.mark.disruptive, pytest.mark.slow]


def rabbitmqctl(ctl: str, action: str) -> None:
    subprocess.run([ctl, action], check=True, capture_output=True, timeout=120)


QUEUE_TYPES = ["classic", "quorum"]


@asynccontextmanager
async def queue_type_settings(queue_type: str, base: Settings) -> AsyncIterator[Settings]:
    """The session's settings with AMQP_QUEUE_TYPE set, on queues named for the type (a
    queue's type cannot change); the queues are removed afterwards."""
    custom = make_settings(
        AMQP_QUEUE_TYPE=queue_type, AMQP_PREFIX=f"{base.AMQP_PREFIX}-{queue_type}"
    )
    yield custom
    connection = await aiormq.connect(custom.RABBITMQ_URL.get_secret_value())
    await Topology.from_settings(custom).delete(await connection.channel())
    await connection.close()


@pytest.fixture(params=QUEUE_TYPES)
async def settings(
    request: pytest.FixtureRequest, base_settings: Settings
) -> AsyncIterator[Settings]:
    async with queue_type_settings(request.param, base_settings) as custom:
        yield custom


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
