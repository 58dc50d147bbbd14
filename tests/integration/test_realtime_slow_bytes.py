"""Slow consumers of small frames: a client that stops reading is closed with 4008 once more
than SEND_QUEUE_BYTES wait for it (in its queue or its socket's buffer), long before its
queue could hold SEND_QUEUE_MESSAGES messages; a client that reads the same flood is not."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import WSMsgType

from server.hub.hub import hub_key
from tests.integration.test_realtime_channels import custom_client, open_sse, subscribe, unique
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.frames import close_code
from tests.support.waiting import eventually

SMALL_FRAMES_APP = {
    "SEND_QUEUE_MESSAGES": 1_000_000,  # only the bytes can make a client slow here
    "PUBLISH_RATE": 100000,
    "PUBLISH_BURST": 100000,
    "FRAME_RATE": 100000,
}
DATA = "s" * 300  # a frame of about 400 bytes
BATCH = 100
FEW_SECONDS = 10.0  # about 3 s here: the kernel buffers ~4 MB on loopback first
READER_PUBLICATIONS = 12000  # 5 MB: what closes the client that does not read


async def publish_batch(publisher: Any, channel: str) -> None:
    for _ in range(BATCH):
        await publisher.send_json({"type": "publish", "channel": channel, "data": DATA})
    for _ in range(BATCH):
        await next_of(publisher, "ack")


async def test_a_client_that_stops_reading_small_frames_is_closed_within_seconds(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, **SMALL_FRAMES_APP)
    channel = unique()
    slow = await client.ws_connect("/realtime/ws", headers=bob.headers)  # a raw client
    slow_id = (await slow.receive_json(timeout=5))["client_id"]
    await subscribe(slow, channel)
    # from here on the slow client reads nothing
    slow_connection = client.app[hub_key].connections[slow_id]
    publisher = await connect(client, alice)
    started = time.monotonic()
    published = 0
    while not slow_connection.closed and time.monotonic() - started < FEW_SECONDS:
        await publish_batch(publisher, channel)
        published += BATCH
    elapsed = time.monotonic() - started
    assert slow_connection.closed, f"not closed after {published} publications in {elapsed:.1f}s"
    assert slow_connection.close_code == 4008
    # the client, reading again, finds what was already on the wire, then the close
    assert await close_code(slow, timeout=30) == 4008
    await publisher.close()


async def test_a_client_that_reads_the_same_flood_is_not_closed(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, **SMALL_FRAMES_APP)
    channel = unique()
    reader = await connect(client, bob)
    await subscribe(reader, channel)
    received = 0

    async def read() -> None:
        nonlocal received
        async for message in reader:
            if message.type is not WSMsgType.TEXT:
                return
            if message.json()["type"] == "publication":
                received += 1

    reading = asyncio.ensure_future(read())
    publisher = await connect(client, alice)
    for _ in range(READER_PUBLICATIONS // BATCH):
        await publish_batch(publisher, channel)

    async def all_read() -> bool:
        return received >= READER_PUBLICATIONS

    await eventually(all_read, timeout=30)
    assert not reader.closed
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    await reader.close()
    await publisher.close()


async def test_an_event_stream_that_stops_reading_is_closed_within_seconds(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, **SMALL_FRAMES_APP)
    channel = unique()
    response, hello = await open_sse(client, bob, [channel])  # then reads nothing
    slow_connection = client.app[hub_key].connections[hello["client_id"]]
    publisher = await connect(client, alice)
    started = time.monotonic()
    published = 0
    while not slow_connection.closed and time.monotonic() - started < FEW_SECONDS:
        await publish_batch(publisher, channel)
        published += BATCH
    assert slow_connection.closed, f"not closed after {published} publications"
    assert slow_connection.close_code == 4008
    response.close()
    await publisher.close()
