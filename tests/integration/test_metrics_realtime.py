"""GET /metrics: the realtime families follow real traffic. A WebSocket connecting and
subscribing moves the connection and subscription gauges, a publication moves publications
and deliveries, subscribes from a cursor count as recovered or failed, an upload moves the
upload bytes, and a slow consumer's close is counted."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from server.hub.hub import hub_key
from tests.integration.test_realtime_backpressure import BATCH, SLOW_APP
from tests.integration.test_realtime_channels import (
    custom_client,
    open_sse,
    publications,
    publish,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import connect, next_of
from tests.integration.test_uploads_ws import app  # noqa: F401  (uploads go to tmp_path)
from tests.support.accounts import Account
from tests.support.frames import close_code
from tests.support.uploads import form, post
from tests.support.waiting import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: Any, headers: dict[str, str] | None = None) -> Samples:
    """Every sample of GET /metrics, by name and sorted labels."""
    response = await client.get("/metrics", headers=headers or {})
    assert response.status == 200, await response.text()
    return parse(await response.text())


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} not exported"
    return samples[key]


async def test_connections_subscriptions_publications_and_deliveries(
    client: Any, alice: Account, bob: Account
) -> None:
    before = await scrape(client)
    assert value(before, "realtime_connections", transport="ws") == 0
    assert value(before, "realtime_publications_total") == 0
    channel = unique()
    ws = await connect(client, alice)
    other = await connect(client, bob)
    await subscribe(ws, channel)
    await subscribe(other, channel)
    sse, _ = await open_sse(client, bob, [channel])

    during = await scrape(client)
    assert value(during, "realtime_connections", transport="ws") == 2
    assert value(during, "realtime_connections", transport="sse") == 1
    assert value(during, "realtime_connections_opened_total", transport="ws") == 2
    assert value(during, "realtime_users") == 2
    assert value(during, "realtime_channels") == 1
    assert value(during, "realtime_subscriptions") == 3

    for n in range(3):
        await publish(ws, channel, n)
    assert [p["data"] for p in await publications(other, 3)] == [0, 1, 2]

    async def delivered() -> bool:
        samples = await scrape(client)
        return value(samples, "realtime_deliveries_total") == 3 * 3

    await eventually(delivered)
    after = await scrape(client)
    assert value(after, "realtime_publications_total") == 3

    sse.close()
    await ws.close()
    await other.close()

    async def closed() -> bool:
        samples = await scrape(client)
        return value(samples, "realtime_connections", transport="ws") == 0

    await eventually(closed)
    gone = await scrape(client)
    assert value(gone, "realtime_subscriptions") == 0
    assert value(gone, "realtime_connections_opened_total", transport="ws") == 2


async def test_recoveries_are_counted_by_result(client: Any, alice: Account) -> None:
    channel = unique()
    ws = await connect(client, alice)
    first = await publish(ws, channel, 1)
    await publish(ws, channel, 2)
    reader = await connect(client, alice)
    assert (await subscribe(reader, channel, since=first["cursor"]))["recovered"] is True
    epoch = first["cursor"].split(":")[0]
    late = await connect(client, alice)
    assert (await subscribe(late, channel, since=f"{epoch}:99"))["recovered"] is False
    samples = await scrape(client)
    assert value(samples, "realtime_recoveries_total", result="recovered") == 1
    assert value(samples, "realtime_recoveries_total", result="failed") == 1
    assert value(samples, "realtime_gaps_total") == 0
    for socket in (ws, reader, late):
        await socket.close()


async def test_an_upload_moves_the_upload_bytes(client: Any, alice: Account) -> None:
    assert value(await scrape(client), "realtime_upload_bytes_total") == 0
    data = os.urandom(300_000)
    response = await post(client, alice, form(data))
    assert response.status == 201, await response.text()
    assert value(await scrape(client), "realtime_upload_bytes_total") == len(data)
    assert value(await scrape(client), "realtime_uploads_in_progress") == 0


async def test_a_slow_consumer_close_is_counted(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, **SLOW_APP)
    assert value(await scrape(client), "realtime_slow_consumer_closes_total") == 0
    channel = unique()
    slow = await client.ws_connect("/realtime/ws", headers=bob.headers)  # never reads
    slow_id = (await slow.receive_json(timeout=5))["client_id"]
    await subscribe(slow, channel)
    publisher = await connect(client, alice)
    connection = client.app[hub_key].connections[slow_id]
    sent = 0
    while not connection.closed and sent < 20000:
        for _ in range(BATCH):
            await publisher.send_json({"type": "publish", "channel": channel, "data": "x" * 8000})
        for _ in range(BATCH):
            await next_of(publisher, "ack")
        sent += BATCH
    assert connection.close_code == 4008
    # counted when the connection is gone: once the slow client reads its close frame
    assert await close_code(slow, timeout=30) == 4008

    async def counted() -> bool:
        samples = await scrape(client)
        return value(samples, "realtime_slow_consumer_closes_total") == 1

    await eventually(counted)
    await publisher.close()
