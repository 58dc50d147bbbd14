"""workers/broker/publishing.py against the real RabbitMQ: a batch in one write is confirmed per
message, arrives whole and in order, and an unroutable message, a bad exchange or a
concurrent basic_publish on the same channel are each reported to the right caller."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiormq
import pytest
from pamqp.commands import Basic

from workers.broker.publishing import NotConfirmed, Outgoing, ack_many, publish_confirmed


@pytest.fixture
async def channel(settings: Any) -> AsyncIterator[Any]:
    connection = await aiormq.connect(settings.RABBITMQ_URL.get_secret_value())
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()


@pytest.fixture
async def queue(channel: Any) -> AsyncIterator[str]:
    name = f"test-publishing-{uuid.uuid4().hex[:8]}"
    await channel.queue_declare(name, auto_delete=False)
    try:
        yield name
    finally:
        await channel.queue_delete(name)


def message(body: bytes, routing_key: str, exchange: str = "") -> Outgoing:
    return Outgoing(
        body=body,
        exchange=exchange,
        routing_key=routing_key,
        properties=Basic.Properties(delivery_mode=2, message_id=uuid.uuid4().hex),
    )


async def drain(channel: Any, queue: str, count: int) -> list[Any]:
    got = []
    for _ in range(count):
        delivered = await channel.basic_get(queue, no_ack=True)
        assert delivered.body is not None
        got.append(delivered)
    return got


async def test_a_batch_is_confirmed_whole_and_in_order(channel: Any, queue: str) -> None:
    big = bytes(range(256)) * 1200  # 300 KB: split over several body frames
    batch = [message(f"m{i}".encode(), queue) for i in range(300)]
    batch.insert(150, message(big, queue))
    assert await publish_confirmed(channel, batch, timeout=10) == [None] * len(batch)
    got = await drain(channel, queue, len(batch))
    assert [m.body for m in got] == [m.body for m in batch]
    assert [m.header.properties.message_id for m in got] == [m.properties.message_id for m in batch]
    assert (await channel.queue_declare(queue, passive=True)).message_count == 0


async def test_an_unroutable_message_fails_alone(channel: Any, queue: str) -> None:
    exchange = f"test-publishing-x-{uuid.uuid4().hex[:8]}"
    await channel.exchange_declare(exchange, exchange_type="direct", auto_delete=True)
    try:
        batch = [
            message(b"a", queue),
            message(b"nowhere", "no-such-binding", exchange=exchange),
            message(b"b", queue),
        ]
        results = await publish_confirmed(channel, batch, timeout=10)
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], NotConfirmed)
        assert "unroutable" in str(results[1])
        assert [m.body for m in await drain(channel, queue, 2)] == [b"a", b"b"]
        assert channel.message_id_delivery_tag == {}  # nothing left behind
    finally:
        await channel.exchange_delete(exchange)


async def test_a_missing_exchange_fails_the_batch_without_hanging(channel: Any) -> None:
    batch = [message(b"x", "k", exchange="no-such-exchange-here") for _ in range(3)]
    results = await publish_confirmed(channel, batch, timeout=10)
    assert all(isinstance(result, aiormq.exceptions.AMQPError) for result in results), results
    assert channel.is_closed


async def test_it_shares_a_channel_with_basic_publish(channel: Any, queue: str) -> None:
    batches = [[message(f"{b}-{i}".encode(), queue) for i in range(50)] for b in range(4)]
    singles = [
        channel.basic_publish(
            f"single-{i}".encode(),
            routing_key=queue,
            properties=Basic.Properties(message_id=uuid.uuid4().hex),
        )
        for i in range(20)
    ]
    outcomes = await asyncio.gather(
        *(publish_confirmed(channel, batch, timeout=10) for batch in batches), *singles
    )
    for outcome in outcomes[: len(batches)]:
        assert outcome == [None] * 50
    assert all(isinstance(ack, Basic.Ack) for ack in outcomes[len(batches) :])
    bodies = {m.body for m in await drain(channel, queue, 220)}
    assert len(bodies) == 220


async def test_every_message_needs_an_id(channel: Any, queue: str) -> None:
    anonymous = Outgoing(b"x", "", queue, Basic.Properties())
    with pytest.raises(ValueError, match="message_id"):
        await publish_confirmed(channel, [message(b"first", queue), anonymous], timeout=10)
    assert await publish_confirmed(channel, [], timeout=10) == []
    # nothing was numbered or sent: the channel's confirms still line up
    assert await publish_confirmed(channel, [message(b"after", queue)], timeout=10) == [None]
    assert [m.body for m in await drain(channel, queue, 1)] == [b"after"]


async def test_acks_in_one_write_settle_exactly_the_named_deliveries(
    channel: Any, queue: str
) -> None:
    batch = [message(f"a{i}".encode(), queue) for i in range(6)]
    assert await publish_confirmed(channel, batch, timeout=10) == [None] * 6
    consumer = await channel.connection.channel()
    await consumer.basic_qos(prefetch_count=10)
    got: list[Any] = []
    all_in = asyncio.Event()

    async def on_message(delivered: Any) -> None:
        got.append(delivered)
        if len(got) == 6:
            all_in.set()

    await consumer.basic_consume(queue, on_message, no_ack=False)
    await asyncio.wait_for(all_in.wait(), 10)
    await ack_many(consumer, [m.delivery_tag for m in got[:2]] + [got[4].delivery_tag])
    await consumer.close()  # the three not acked go back to the queue
    left = await drain(channel, queue, 3)
    assert sorted(m.body for m in left) == [b"a2", b"a3", b"a5"]
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await ack_many(consumer, [1])
