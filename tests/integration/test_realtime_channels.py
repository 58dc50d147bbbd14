"""WebSocket channels: the `connected` frame, ping/pong, subscribe/unsubscribe, fan-out of
publications (every subscriber, once, in order). Recovery is in test_realtime_recovery.py.

The helpers at the top are shared by the other test_realtime_*.py files."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import orjson
import pytest

from server.hub.hub import hub_key
from tests.integration.test_auth_login import isolated_client
from tests.integration.test_realtime_sse import read_events
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.frames import next_frame
from tests.support.waiting import eventually

CURSOR = re.compile(r"^[0-9a-f]{8}:\d+$")
PUBLICATION_FIELDS = {"type", "channel", "data", "offset", "epoch", "cursor", "from", "ts"}


def unique(namespace: str = "public") -> str:
    """A channel no other test uses (all tests of a run share one Redis prefix)."""
    return f"{namespace}:t-{uuid.uuid4().hex[:12]}"


async def custom_client(aiohttp_client: Any, settings: Any, **overrides: Any) -> Any:
    """An app with other settings on a Redis prefix of its own (removed at shutdown)."""
    return await isolated_client(aiohttp_client, settings, **overrides)


async def subscribe(ws: Any, channel: str, **fields: Any) -> dict[str, Any]:
    await ws.send_json({"type": "subscribe", "channel": channel, **fields})
    async with asyncio.timeout(5):
        while True:
            frame: dict[str, Any] = await ws.receive_json()
            if frame["type"] == "error":
                raise AssertionError(f"subscribe to {channel} failed: {frame}")
            if frame["type"] == "subscribed" and frame["channel"] == channel:
                return frame


async def publish(ws: Any, channel: str, data: Any, id: Any = None) -> dict[str, Any]:
    message = {"type": "publish", "channel": channel, "data": data}
    if id is not None:
        message["id"] = id
    await ws.send_json(message)
    frame = await next_frame(ws, ("ack", "error"))
    if frame["type"] == "error":
        raise AssertionError(f"publish to {channel} failed: {frame}")
    return frame


async def error_for(ws: Any, frame: Any) -> dict[str, Any]:
    """Send a text frame (a dict as JSON, a str as is) and return the error answering it."""
    if isinstance(frame, str):
        await ws.send_str(frame)
    else:
        await ws.send_json(frame)
    return await next_of(ws, "error")


async def assert_answers_ping(ws: Any) -> None:
    marker = uuid.uuid4().hex
    await ws.send_json({"type": "ping", "id": marker})
    assert (await next_of(ws, "pong"))["id"] == marker


async def assert_quiet(ws: Any) -> None:
    """Nothing is waiting for this client: the very next frame answers our ping."""
    marker = uuid.uuid4().hex
    await ws.send_json({"type": "ping", "id": marker})
    frame = await ws.receive_json(timeout=5)
    assert frame == {"type": "pong", "data": None, "id": marker}


async def publications(ws: Any, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The next `count` publications (other frames skipped)."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(found) < count:
            found.append(await next_frame(ws, ("publication",), timeout))
    return found


QUIET_EVENTS = ("join", "leave", "subscribed")


async def sse_events(
    response: Any, count: int, timeout: float = 5, skip: tuple[str, ...] = QUIET_EVENTS
) -> list[dict[str, Any]]:
    """The next `count` SSE events, skipping presence events and the per-channel
    `subscribed` events unless asked for."""
    return await read_events(response, count, timeout=timeout, skip=skip)


async def open_sse(
    client: Any, account: Account, channels: list[str], **headers: str
) -> tuple[Any, dict[str, Any]]:
    """An event stream, its `connected` data, once every channel is live. (`connected` is
    sent before the channels are subscribed, and SSE has no `subscribed` reply, so this
    waits on the node's view of the connection.)"""
    response = await client.get(
        "/realtime/events",
        params={"channels": ",".join(channels)},
        headers={**account.headers, **headers},
    )
    assert response.status == 200, await response.text()
    [event] = await sse_events(response, 1)
    assert event["event"] == "connected"
    hello: dict[str, Any] = orjson.loads(event["data"])
    hub = client.app[hub_key]

    async def live() -> bool:
        connection = hub.connections.get(hello["client_id"])
        subscriptions = connection.subscriptions if connection is not None else {}
        return set(subscriptions) == set(channels) and all(
            s.buffer is None for s in subscriptions.values()
        )

    await eventually(live, timeout=5, interval=0.01)
    return response, hello


# -- connecting -----------------------------------------------------------------------------


async def test_connected_frame(client: Any, alice: Account) -> None:
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    hello = await ws.receive_json(timeout=5)
    assert set(hello) == {"type", "client_id", "user_id", "server_time", "node"}
    assert hello["type"] == "connected"
    assert hello["user_id"] == alice.id
    assert re.fullmatch(r"[0-9a-f]{32}", hello["client_id"])
    assert abs(hello["server_time"] - time.time() * 1000) < 60_000
    assert hello["node"] == client.app[hub_key].node_id
    other = await connect(client, alice)
    await other.send_json({"type": "ping", "id": 1})
    await next_of(other, "pong")
    assert hello["client_id"] in client.app[hub_key].connections
    await ws.close()
    await other.close()


@pytest.mark.parametrize(
    ("ping", "pong"),
    [
        ({"type": "ping"}, {"type": "pong", "data": None}),
        ({"type": "ping", "id": 0}, {"type": "pong", "data": None, "id": 0}),
        (
            {"type": "ping", "id": "a-1", "data": [1, "x"]},
            {"type": "pong", "data": [1, "x"], "id": "a-1"},
        ),
    ],
)
async def test_ping_is_answered_with_its_id_and_data(
    client: Any, alice: Account, ping: dict[str, Any], pong: dict[str, Any]
) -> None:
    ws = await connect(client, alice)
    await ws.send_json(ping)
    assert await ws.receive_json(timeout=5) == pong
    await ws.close()


# -- subscribe, unsubscribe ----------------------------------------------------------------


async def test_subscribed_reply(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    channel = unique()
    await ws.send_json({"type": "subscribe", "channel": channel, "id": "s1"})
    reply = await next_of(ws, "subscribed")
    assert reply == {
        "type": "subscribed",
        "channel": channel,
        "cursor": reply["cursor"],
        "recovered": True,
        "publications": [],
        "id": "s1",
    }
    assert CURSOR.match(reply["cursor"]) and reply["cursor"].endswith(":0")
    await ws.close()


async def test_unsubscribe_stops_publications(client: Any, alice: Account, bob: Account) -> None:
    channel = unique()
    leaving, witness = await connect(client, alice), await connect(client, bob)
    await subscribe(leaving, channel)
    await subscribe(witness, channel)
    await leaving.send_json({"type": "unsubscribe", "channel": channel, "id": 9})
    assert await next_of(leaving, "unsubscribed") == {
        "type": "unsubscribed",
        "channel": channel,
        "id": 9,
    }
    await publish(witness, channel, "after")
    assert [p["data"] for p in await publications(witness, 1)] == ["after"]
    await assert_quiet(leaving)
    assert (await error_for(leaving, {"type": "unsubscribe", "channel": channel}))["code"] == (
        "not_subscribed"
    )
    await leaving.close()
    await witness.close()


# -- publish and fan-out ---------------------------------------------------------------------


async def test_fifty_publications_reach_every_subscriber_once_in_order(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = unique()
    publisher, second, third = [await connect(client, a) for a in (alice, alice, bob)]
    for ws in (publisher, second, third):
        await subscribe(ws, channel)
    for n in range(50):
        await publisher.send_json(
            {"type": "publish", "channel": channel, "data": {"n": n}, "id": n}
        )
    acks: list[dict[str, Any]] = []
    seen: dict[Any, list[dict[str, Any]]] = {publisher: [], second: [], third: []}
    async with asyncio.timeout(10):
        while len(acks) < 50 or len(seen[publisher]) < 50:
            frame = await publisher.receive_json()
            if frame["type"] == "ack":
                acks.append(frame)
            elif frame["type"] == "publication":
                seen[publisher].append(frame)
    seen[second] = await publications(second, 50)
    seen[third] = await publications(third, 50)

    assert [a["id"] for a in acks] == list(range(50))
    assert all(set(a) == {"type", "id", "offset", "cursor"} for a in acks)
    offsets = [a["offset"] for a in acks]
    assert offsets == list(range(offsets[0], offsets[0] + 50))
    for received in seen.values():
        assert [p["data"]["n"] for p in received] == list(range(50))
        assert [p["offset"] for p in received] == offsets
        assert [p["cursor"] for p in received] == [a["cursor"] for a in acks]
        for p in received:
            assert set(p) == PUBLICATION_FIELDS
            assert p["channel"] == channel
            assert p["cursor"] == f"{p['epoch']}:{p['offset']}"
            assert p["from"] == {"user_id": alice.id, "client_id": p["from"]["client_id"]}
            assert abs(p["ts"] - time.time() * 1000) < 60_000
    # exactly once: after the 50th, the next publication anyone sees is the next one
    await publish(publisher, channel, "end")
    for ws in (second, third):
        assert [p["data"] for p in await publications(ws, 1)] == ["end"]
        await assert_quiet(ws)
    for ws in (publisher, second, third):
        await ws.close()


async def test_publisher_from_carries_its_client_id(client: Any, alice: Account) -> None:
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    hello = await ws.receive_json(timeout=5)
    channel = unique()
    await subscribe(ws, channel)
    await publish(ws, channel, 1)
    [p] = await publications(ws, 1)
    assert p["from"] == {"user_id": alice.id, "client_id": hello["client_id"]}
    await ws.close()
