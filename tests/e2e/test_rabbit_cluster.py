"""A three-node RabbitMQ cluster (tests/support/rabbit_cluster.py) with quorum queues: the
server's outbox relay and a worker get all three URLs in RABBITMQ_URL, 2,000 messages are
sent, and the node both are connected to is stopped (`rabbitmqctl stop_app`) in the middle
of the load. Both move to another node; every accepted message is applied exactly once.

Slow (three Erlang VMs boot, about 15 s on 2 cores) and disruptive (it loads the machine and
shares epmd with its RabbitMQ, though it never touches that broker): RUN_DISRUPTIVE=1.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.auth.service import AuthService
from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.integration.test_messaging_support import count, marker
from tests.support.accounts import create_account
from tests.support.rabbit_cluster import RabbitCluster, rabbit_cluster
from tests.support.waiting import eventually
from workers.broker.amqp import amqp_key
from workers.client import MessageClient
from workers.process import worker_running

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.disruptive,
    pytest.mark.usefixtures("clean_tables"),
]

log = logging.getLogger(__name__)

MESSAGES = 2000
STOP_AFTER = 400  # processed messages before the node goes down


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[RabbitCluster]:
    async with rabbit_cluster(tmp_path / "rabbit") as running:
        log.warning("three-node RabbitMQ cluster started in %.1f s", running.started_in)
        yield running


@pytest.fixture
def cluster_settings(cluster: RabbitCluster, settings: Settings) -> Settings:
    return make_settings(
        RABBITMQ_URL=",".join(cluster.urls),
        AMQP_QUEUE_TYPE="quorum",
        AMQP_PREFIX=f"{settings.AMQP_PREFIX}-cluster",
    )


async def applied(db: Any, ids: list[str]) -> tuple[int, int]:
    """(notifications stored, distinct bodies among them) for the messages `ids`."""
    sql = "SELECT count(*) FROM notifications WHERE message_id = ANY(%(ids)s::uuid[])"
    distinct = (
        "SELECT count(DISTINCT body) FROM notifications WHERE message_id = ANY(%(ids)s::uuid[])"
    )
    return await count(db, sql, ids=ids), await count(db, distinct, ids=ids)


@pytest.mark.timeout(400)
async def test_a_node_stopped_mid_load_loses_and_repeats_nothing(
    aiohttp_client: Any,
    db: Any,
    auth_service: AuthService,
    cluster: RabbitCluster,
    cluster_settings: Settings,
) -> None:
    # No `client` fixture: its app's relay (on the machine's broker) would claim rows too.
    alice = await create_account(db, auth_service)
    prefix = marker("cluster")
    app = create_app(cluster_settings)
    await aiohttp_client(app)  # starts the server's relay, on the cluster
    ids: list[str] = []

    async def send_all() -> None:
        async with MessageClient(cluster_settings).session() as message_client:
            for n in range(MESSAGES):
                message_id = await message_client.send_user_notification(alice.id, f"{prefix}-{n}")
                ids.append(str(message_id))

    async with worker_running(cluster_settings) as worker:
        await worker.amqp.wait_connected(timeout=30)
        first = worker.amqp.url
        assert first == cluster.urls[0]  # both start on rt1: stopping it moves both
        sending = asyncio.create_task(send_all())

        async def some_processed() -> bool:
            return (await applied(db, list(ids)))[0] >= STOP_AFTER

        await eventually(some_processed, timeout=120, interval=0.2)
        stopped_at = time.monotonic()
        await cluster.stop_app(cluster.nodes[0])
        log.warning("rt1 stopped after %d messages were sent", len(ids))
        await sending
        assert len(ids) == MESSAGES

        async def all_applied() -> bool:
            return (await applied(db, ids))[0] >= MESSAGES

        await eventually(all_applied, timeout=240, interval=1)
        log.warning("all applied %.1f s after rt1 stopped", time.monotonic() - stopped_at)
        await asyncio.sleep(3)  # a duplicate delivery, were there one, would land now
        assert await applied(db, ids) == (MESSAGES, MESSAGES)
        left = "SELECT count(*) FROM outbox WHERE message_id = ANY(%(ids)s::uuid[])"
        assert await count(db, left, ids=ids) == 0
        unfinished = (
            "SELECT count(*) FROM messages WHERE id = ANY(%(ids)s::uuid[]) "
            "AND status <> 'processed'"
        )
        assert await count(db, unfinished, ids=ids) == 0
        # Both really failed over to another node of the cluster.
        assert worker.amqp.connects >= 2 and worker.amqp.url != first
        server_amqp = app[amqp_key]  # the connection the relay publishes through
        assert server_amqp.connects >= 2 and server_amqp.url != first
