"""RabbitMQ stopped (`rabbitmqctl stop_app`) while 1,000 messages are accepted, then started:
the outbox relay publishes them all and the worker processes each exactly once, with classic
and with quorum queues (AMQP_QUEUE_TYPE).

Disruptive: it stops the machine's shared RabbitMQ. Run it alone, on purpose:
    pytest tests/integration/test_messaging_broker_restart.py -m disruptive
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.kernel.settings import Settings
from tests.integration.test_broker_restart import QUEUE_TYPES, queue_type_settings, rabbitmqctl
from tests.integration.test_messaging_support import count, marker, send
from tests.support.accounts import Account
from tests.support.waiting import eventually
from workers.client import MessageClient

pytestmark = [pytest.mark.usefixtures("clean_tables"), pytest.mark.disruptive, pytest.mark.slow]

MESSAGES = 1000


@pytest.fixture(params=QUEUE_TYPES)
async def settings(
    request: pytest.FixtureRequest, base_settings: Settings
) -> AsyncIterator[Settings]:
    async with queue_type_settings(request.param, base_settings) as custom:
        yield custom


@pytest.mark.timeout(400)
async def test_messages_accepted_while_the_broker_is_down_are_each_processed_once(
    client: Any,
    admin: Account,
    alice: Account,
    worker: Any,
    db: Any,
    settings: Any,
    rabbitmq_ctl: str,
) -> None:
    prefix = marker("outage")
    await asyncio.to_thread(rabbitmqctl, rabbitmq_ctl, "stop_app")
    try:
        async with MessageClient(settings).session() as message_client:
            ids = [
                str(await message_client.send_user_notification(alice.id, f"{prefix}-{n}"))
                for n in range(MESSAGES - 10)
            ]
        for n in range(MESSAGES - 10, MESSAGES):  # the HTTP API accepts too
            body = {"user_id": alice.id, "message": f"{prefix}-{n}"}
            response = await send(client, "user_notification", body, account=admin)
            assert response.status == 202, await response.text()
            ids.append((await response.json())["message_id"])
        await asyncio.sleep(2)  # the relay tries, and cannot publish
        waiting = await count(
            db, "SELECT count(*) FROM outbox WHERE message_id = ANY(%(ids)s::uuid[])", ids=ids
        )
        assert waiting == MESSAGES
        report = await (await client.get("/messaging/health", headers=admin.headers)).json()
        assert report["broker"]["connected"] is False
        assert report["status"].startswith("degraded: broker")
        assert report["outbox"]["backlog"] >= MESSAGES
    finally:
        await asyncio.to_thread(rabbitmqctl, rabbitmq_ctl, "start_app")

    async def all_processed() -> bool:
        done = await count(
            db,
            "SELECT count(*) FROM processed_messages WHERE message_id = ANY(%(ids)s::uuid[])",
            ids=ids,
        )
        return done == MESSAGES

    await eventually(all_processed, timeout=300, interval=1)
    await asyncio.sleep(2)  # a duplicate delivery, were there one, would land now
    stored = await count(
        db, "SELECT count(*) FROM notifications WHERE message_id = ANY(%(ids)s::uuid[])", ids=ids
    )
    distinct = await count(
        db,
        "SELECT count(DISTINCT body) FROM notifications WHERE message_id = ANY(%(ids)s::uuid[])",
        ids=ids,
    )
    assert (stored, distinct) == (MESSAGES, MESSAGES)
    left = "SELECT count(*) FROM outbox WHERE message_id = ANY(%(ids)s::uuid[])"
    assert await count(db, left, ids=ids) == 0
    unfinished = (
        "SELECT count(*) FROM messages WHERE id = ANY(%(ids)s::uuid[]) AND status <> 'processed'"
    )
    assert await count(db, unfinished, ids=ids) == 0
    assert worker.amqp.connects >= 2  # it really reconnected
