"""Slow consumers: a client that stops reading is closed with 4008 once its queue passes
SEND_QUEUE_MESSAGES, and nobody else on the channel waits for it or loses anything."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType

from server.hub.hub import hub_key
from tests.integration.test_realtime_channels import (
    custom_client,
    publish,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.frames import close_code
from tests.support.waiting import eventually

SLOW_APP = {
    "SEND_BUFFER_BYTES": 65536,
    "SEND_QUEUE_MESSAGES": 50,
    # the publisher must not be the bottleneck: the kernel buffers megabytes on loopback
    "PUBLISH_RATE": 100000,
    "PUBLISH_BURST": 100000,
    "FRAME_RATE": 100000,
}
MAX_PUBLICATIONS = 20000
BATCH = 50


async def test_slow_consumer_is_closed_and_the_fast_one_gets_everything(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, **SLOW_APP)
    channel = unique()
    slow = await client.ws_connect("/realtime/ws", headers=bob.headers)  # a raw client
    slow_id = (await slow.receive_json(timeout=5))["client_id"]
    await subscribe(slow, channel)
    # from here on the slow client reads nothing until the flood is over

    fast = await connect(client, alice)
    await subscribe(fast, channel)
    received: list[int] = []

    async def read_fast() -> None:
        async for message in fast:
            if message.type is not WSMsgType.TEXT:
                return
            frame = message.json()
            if frame["type"] == "publication":
                received.append(frame["offset"])

    reader = asyncio.ensure_future(read_fast())
    publisher = await connect(client, alice)
    hub = client.app[hub_key]
    slow_connection = hub.connections[slow_id]
    data = "x" * 8000
    offsets: list[int] = []
    while not slow_connection.closed and len(offsets) < MAX_PUBLICATIONS:
        for _ in range(BATCH):
            await publisher.send_json({"type": "publish", "channel": channel, "data": data})
        for _ in range(BATCH):
            offsets.append((await next_of(publisher, "ack"))["offset"])
    assert slow_connection.closed, f"not closed after {len(offsets)} publications of 8 KB"
    assert slow_connection.close_code == 4008

    # the slow client, reading again, finds what was already on the wire, then the close
    assert await close_code(slow, timeout=30) == 4008

    # the fast subscriber got every publication, once, in order, and is still connected
    last = (await publish(publisher, channel, "last"))["offset"]
    expected = [*offsets, last]

    async def caught_up() -> bool:
        return len(received) >= len(expected)

    await eventually(caught_up, timeout=30)
    assert received == expected
    assert not fast.closed
    assert slow_id not in hub.connections
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await fast.close()
    await publisher.close()


async def test_a_reader_that_keeps_up_is_never_closed(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    """The same small limits, 500 publications of 8 KB: a client that reads is fine."""
    client = await custom_client(aiohttp_client, settings, **SLOW_APP)
    channel = unique()
    reader = await connect(client, alice)
    await subscribe(reader, channel)
    publisher = await connect(client, alice)
    data = "y" * 8000
    count = 0
    for _ in range(10):
        for _ in range(BATCH):
            await publisher.send_json({"type": "publish", "channel": channel, "data": data})
        for _ in range(BATCH):
            await next_of(publisher, "ack")
        for _ in range(BATCH):
            frame = await next_of(reader, "publication")
            count += 1
            assert frame["offset"] == count
    assert not reader.closed
    await reader.close()
    await publisher.close()
