"""The node's WebSocket heartbeat (server/hub/heartbeat.py) against a real server: silent
clients are pinged every WS_HEARTBEAT, those that answer (a pong, or any message) stay, and
one that does not is dropped within WS_HEARTBEAT/2 of its ping; a client's own ping gets a
pong."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise
from typing import Any, Literal

from aiohttp import WSMsgType

from server.hub.hub import hub_key
from server.hub.protocol import Message, message_types_key
from tests.integration.test_metrics_realtime import scrape, value
from tests.integration.test_realtime_channels import custom_client
from tests.support.accounts import Account

HEARTBEAT = 1.0


async def heartbeat_client(aiohttp_client: Any, settings: Any) -> Any:
    return await custom_client(aiohttp_client, settings, WS_HEARTBEAT=HEARTBEAT)


async def connect(client: Any, account: Account, *, autoping: bool = False) -> Any:
    """A socket, greeted; by default it does not answer pings by itself (the test decides;
    with `autoping` aiohttp answers them while the socket is read)."""
    ws = await client.ws_connect("/realtime/ws", headers=account.headers, autoping=autoping)
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "connected"
    return ws


async def test_a_silent_client_that_answers_stays_and_is_pinged_once_per_heartbeat(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await heartbeat_client(aiohttp_client, settings)
    ws = await connect(client, alice)
    pings = []
    started = time.monotonic()
    while time.monotonic() - started < 5.5 * HEARTBEAT:
        message = await ws.receive(timeout=3 * HEARTBEAT)
        assert message.type is WSMsgType.PING, message
        pings.append(time.monotonic() - started)
        await ws.pong(message.data)
    # One ping per silent WS_HEARTBEAT, give or take the heartbeat's visit period.
    assert 3 <= len(pings) <= 6, pings
    gaps = [later - earlier for earlier, later in pairwise(pings)]
    assert all(gap >= 0.9 * HEARTBEAT for gap in gaps), gaps
    await ws.send_json({"type": "ping", "id": 1})
    assert (await ws.receive_json(timeout=5))["type"] == "pong"
    assert client.app[hub_key].heartbeat.dropped == 0
    await ws.close()


async def test_a_client_that_does_not_answer_is_dropped(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account
) -> None:
    client = await heartbeat_client(aiohttp_client, settings)
    hub = client.app[hub_key]
    mute = await connect(client, alice)
    alive = await connect(client, bob, autoping=True)
    replies: asyncio.Queue[Any] = asyncio.Queue()

    async def read_alive() -> None:  # aiohttp answers pings while a socket is read
        async for message in alive:
            await replies.put(message.json())

    reader = asyncio.create_task(read_alive())
    started = time.monotonic()
    pinged = await mute.receive(timeout=3 * HEARTBEAT)
    assert pinged.type is WSMsgType.PING
    ping_at = time.monotonic()
    ended = await mute.receive(timeout=3 * HEARTBEAT)  # not answered: the socket goes
    gone_at = time.monotonic()
    assert ended.type in (WSMsgType.CLOSED, WSMsgType.CLOSE, WSMsgType.ERROR), ended
    # Dropped within WS_HEARTBEAT/2 of the ping, give or take a visit (HEARTBEAT/2 here).
    assert 0.2 * HEARTBEAT <= gone_at - ping_at <= 1.6 * HEARTBEAT, (ping_at, gone_at)
    assert gone_at - started <= 3.5 * HEARTBEAT
    assert hub.heartbeat.dropped == 1
    samples = await scrape(client)
    assert value(samples, "realtime_heartbeat_drops_total") == 1
    assert value(samples, "realtime_heartbeat_pings_total") >= 1
    async with asyncio.timeout(5):  # the hub forgets it
        while any(c.user_id == alice.id for c in hub.connections.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    # The other client, answering, is still served.
    await alive.send_json({"type": "ping", "id": 2})
    assert (await asyncio.wait_for(replies.get(), 5))["id"] == 2
    await alive.close()
    await reader


async def test_messages_count_as_answers(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    """A client that talks is never pinged, and never dropped, though it ignores pings."""
    client = await heartbeat_client(aiohttp_client, settings)
    ws = await connect(client, alice)
    started = time.monotonic()
    received = []
    while time.monotonic() - started < 4 * HEARTBEAT:
        await ws.send_json({"type": "ping"})
        received.append(await ws.receive(timeout=5))
        await asyncio.sleep(0.3 * HEARTBEAT)
    assert {message.type for message in received} == {WSMsgType.TEXT}
    assert client.app[hub_key].heartbeat.dropped == 0
    await ws.close()


async def test_a_clients_ping_gets_its_pong(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await heartbeat_client(aiohttp_client, settings)
    ws = await connect(client, alice)
    await ws.ping(b"are you there")
    pong = await ws.receive(timeout=5)
    assert pong.type is WSMsgType.PONG
    assert pong.data == b"are you there"
    await ws.close()


class Slow(Message):
    type: Literal["test_slow"]


async def test_a_client_is_not_judged_while_its_message_is_handled(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    """Nothing is read from a socket while one of its messages is handled (its pongs wait
    behind): a step longer than the heartbeat's deadlines does not drop the client."""
    client = await heartbeat_client(aiohttp_client, settings)

    async def take_long(session: Any, message: Slow) -> None:
        await asyncio.sleep(3 * HEARTBEAT)
        session.reply({"type": "done"}, message)

    client.app[message_types_key].add(Slow, take_long)
    ws = await connect(client, alice, autoping=True)
    await ws.send_json({"type": "test_slow", "id": 9})
    assert await ws.receive_json(timeout=10) == {"type": "done", "id": 9}
    assert client.app[hub_key].heartbeat.dropped == 0
    await ws.close()
