"""POST /tasks/example through the outbox, RabbitMQ and the real worker to a stored result."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiormq
import orjson
import pytest
from pamqp.commands import Basic

from storage import tasks
from storage.db import transaction
from tests.support.waiting import eventually
from workers.broker.topology import Topology

pytestmark = pytest.mark.usefixtures("clean_tables")


async def wait_finished(user_client: Any, task_id: str, timeout: float = 15) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = await (await user_client.get(f"/tasks/{task_id}")).json()
        return body if body["status"] in ("succeeded", "failed") else None

    return await eventually(finished, timeout=timeout)


async def test_task_runs_and_reports_result_and_timings(user_client: Any, worker: Any) -> None:
    response = await user_client.post(
        "/tasks/example", json={"seconds": 0.2, "payload": {"n": [1, 2]}}
    )
    assert response.status == 202
    created = await response.json()
    assert created["status"] == "queued"
    assert response.headers["Location"] == f"/tasks/{created['id']}"

    done = await wait_finished(user_client, created["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["echo"] == {"n": [1, 2]}
    assert done["result"]["slept_seconds"] >= 0.2
    assert done["attempts"] == 1
    assert done["run_seconds"] >= 0.2
    assert done["wait_seconds"] >= 0


async def test_any_json_payload_round_trips(user_client: Any, worker: Any) -> None:
    payloads = [None, 0, "text", [1, "two", None], {"nested": {"deep": True}}]
    ids = []
    for payload in payloads:
        response = await user_client.post("/tasks/example", json={"seconds": 0, "payload": payload})
        ids.append((await response.json())["id"])
    for task_id, payload in zip(ids, payloads, strict=True):
        assert (await wait_finished(user_client, task_id))["result"]["echo"] == payload


async def test_unknown_task_is_404(user_client: Any) -> None:
    response = await user_client.get(f"/tasks/{uuid.uuid4()}")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_tasks_are_accepted_while_no_worker_runs(user_client: Any, db: Any) -> None:
    response = await user_client.post("/tasks/example", json={"seconds": 0})
    assert response.status == 202
    task_id = uuid.UUID((await response.json())["id"])
    async with transaction(db) as conn:
        assert (await tasks.get(conn, task_id))["status"] == "queued"


async def publish_raw(settings: Any, body: bytes, message_id: str) -> None:
    connection = await aiormq.connect(settings.RABBITMQ_URL.get_secret_value())
    try:
        channel = await connection.channel()
        topology = Topology.from_settings(settings)
        await topology.declare(channel)
        await channel.basic_publish(
            body,
            exchange=topology.exchange,
            routing_key="tasks",
            properties=aiormq.spec.Basic.Properties(delivery_mode=2, message_id=message_id),
        )
    finally:
        await connection.close()


async def dead_letters(settings: Any) -> list[bytes]:
    """Drain the tasks dead-letter queue."""
    connection = await aiormq.connect(settings.RABBITMQ_URL.get_secret_value())
    bodies = []
    try:
        channel = await connection.channel()
        queue = Topology.from_settings(settings).dead_queue("tasks")
        while True:
            message = await channel.basic_get(queue, no_ack=True, timeout=5)
            if isinstance(message.delivery, Basic.GetEmpty):
                break
            bodies.append(message.body)
    finally:
        await connection.close()
    return bodies


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"[1,2,3]",
        b'{"no": "type"}',
        b'{"type": "unknown-job"}',
        b'{"type": "example", "task_id": "not-a-uuid"}',
    ],
)
async def test_poison_messages_are_dead_lettered_and_the_worker_goes_on(
    user_client: Any, worker: Any, settings: Any, body: bytes
) -> None:
    await dead_letters(settings)  # start from an empty dead-letter queue
    await publish_raw(settings, body, f"poison-{uuid.uuid4()}")
    found = await eventually(lambda: _dead_letters_containing(settings, body), timeout=10)
    assert found
    response = await user_client.post("/tasks/example", json={"seconds": 0})
    assert (await wait_finished(user_client, (await response.json())["id"]))[
        "status"
    ] == "succeeded"


async def _dead_letters_containing(settings: Any, body: bytes) -> bool:
    return body in await dead_letters(settings)


async def test_a_redelivered_message_does_not_run_a_finished_task_again(
    user_client: Any, worker: Any, settings: Any
) -> None:
    response = await user_client.post("/tasks/example", json={"seconds": 0, "payload": "once"})
    task_id = (await response.json())["id"]
    first = await wait_finished(user_client, task_id)
    processed_before = worker.processed
    await publish_raw(settings, orjson.dumps({"type": "example", "task_id": task_id}), task_id)
    await eventually(lambda: _async_true(worker.processed > processed_before), timeout=10)
    again = await (await user_client.get(f"/tasks/{task_id}")).json()
    assert again["attempts"] == 1
    assert again["finished_at"] == first["finished_at"]


async def _async_true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
