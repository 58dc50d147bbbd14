"""AMQP_QUEUE_TYPE: quorum queues on the machine's RabbitMQ (a one-node cluster is enough to
declare them), a delayed retry through a quorum retry queue, and queues of the other type
already there: one ERROR line saying what to do, no traceback, no crash loop, and the
connection comes up by itself once the old queues are gone. Each test uses its own prefix."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import aiormq
import pytest
from pamqp.commands import Basic

from tests.integration.test_broker_outage_log import running
from tests.support.waiting import eventually
from workers.broker import amqp as amqp_module
from workers.broker.amqp import AmqpConnection
from workers.broker.kinds import CONCERNS
from workers.broker.topology import Topology

URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def channel() -> AsyncIterator[aiormq.abc.AbstractChannel]:
    connection = await aiormq.connect(URL)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


def topology(prefix: str, queue_type: str) -> Topology:
    return Topology(prefix, (1000,), queue_type)


async def remove(prefix: str) -> None:
    """Delete the queues whatever their type (a refused declaration closes a channel)."""
    connection = await aiormq.connect(URL)
    try:
        await topology(prefix, "classic").delete(await connection.channel())
    finally:
        await connection.close()


async def test_quorum_queues_are_declared_and_a_retry_comes_back_after_its_delay(
    channel: aiormq.abc.AbstractChannel,
) -> None:
    prefix = f"rt-qq-{uuid.uuid4().hex[:8]}"
    quorum = topology(prefix, "quorum")
    try:
        await quorum.declare(channel)
        await quorum.declare(channel)  # declaring again is idempotent
        concern = CONCERNS[0]
        await channel.basic_publish(
            b"{}",
            exchange=quorum.retry_exchange,
            routing_key=concern,
            properties=aiormq.spec.Basic.Properties(
                delivery_mode=2, message_id="m1", headers={"retry-delay": "1000"}
            ),
        )
        sent = time.monotonic()

        async def back() -> aiormq.abc.DeliveredMessage | None:
            got = await channel.basic_get(quorum.queue(concern), no_ack=True)
            return None if isinstance(got.delivery, Basic.GetEmpty) else got

        message = await eventually(back, timeout=10, interval=0.1)
        assert message.header.properties.message_id == "m1"
        assert time.monotonic() - sent >= 0.9  # it waited in the retry queue
        # They really are quorum queues: RabbitMQ refuses them as classic.
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="x-queue-type"):
            await channel.queue_declare(
                quorum.dead_queue(concern), durable=True, arguments={"x-queue-type": "classic"}
            )
    finally:
        await remove(prefix)


@pytest.mark.parametrize(("existing", "wanted"), [("classic", "quorum"), ("quorum", "classic")])
async def test_queues_of_the_other_type_are_one_clear_error_line_then_recovered(
    channel: aiormq.abc.AbstractChannel,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    existing: str,
    wanted: str,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(amqp_module, "MISCONFIGURED_RETRY", 0.3)
    prefix = f"rt-qt-{uuid.uuid4().hex[:8]}"
    await topology(prefix, existing).declare(channel)

    async def declare(connection: aiormq.abc.AbstractConnection) -> None:
        await topology(prefix, wanted).declare(await connection.channel())

    amqp = AmqpConnection(URL, name="worker")
    amqp.on_connect(declare)
    try:
        async with running(amqp):
            await asyncio.sleep(1.5)  # about five set-ups, each refused
            assert not amqp.is_connected
            assert amqp.last_error is not None and f"AMQP_QUEUE_TYPE={wanted}" in amqp.last_error
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]
            line = errors[0].getMessage()
            assert errors[0].exc_info is None and "\n" not in line
            assert f"queue '{prefix}." in line
            assert "PRECONDITION_FAILED" in line
            assert f"keep AMQP_QUEUE_TYPE={existing}" in line
            assert "delete" in line
            assert not [r for r in caplog.records if "setup failed" in r.getMessage()]

            await remove(prefix)  # what the operator does after draining
            await amqp.wait_connected(timeout=5.0)
    finally:
        await remove(prefix)


def test_an_unknown_queue_type_is_refused() -> None:
    with pytest.raises(ValueError, match="queue_type"):
        Topology("rt", queue_type="stream")
