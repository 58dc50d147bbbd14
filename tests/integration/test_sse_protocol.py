"""An event stream after its head is sent (server/hub/handover.py, sse_protocol.py), against
a real server: aiohttp lets go of the socket, the kernel drops a peer that stops
acknowledging, keep-alive comments come from the hub's ring at SSE_PING_INTERVAL, and a
stream the server ends is a complete chunked body followed by the socket's close, and one
whose subscribing fails says so and ends."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import orjson
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from server.hub import sse_protocol
from server.hub.hub import hub_key
from server.hub.protocol import Close
from tests.integration.test_realtime_channels import custom_client, open_sse, sse_events, unique
from tests.integration.test_realtime_sse import publish
from tests.integration.test_ws_protocol import forgotten
from tests.support.accounts import Account


async def test_aiohttp_lets_go_of_the_stream_socket(client: Any, alice: Account) -> None:
    response, hello = await open_sse(client, alice, [unique()])
    assert response.headers["Connection"] == "close"  # the socket ends with the stream
    assert response.headers["Content-Type"] == "text/event-stream"
    connection = client.app[hub_key].connections[hello["client_id"]]
    assert isinstance(connection.transport.get_protocol(), sse_protocol.EventStreamProtocol)
    held_by_aiohttp = [handler.transport for handler in client.server.runner.server.connections]
    assert connection.transport not in held_by_aiohttp
    sock = connection.transport.get_extra_info("socket")
    timeout = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
    assert timeout == sse_protocol.SEND_TIMEOUT_MS
    response.close()


async def test_keep_alive_comments_come_every_interval_and_events_still_flow(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, SSE_PING_INTERVAL=1)
    channel = unique()
    response, _ = await open_sse(client, alice, [channel])
    comments = []
    started = time.monotonic()
    async with asyncio.timeout(10):
        while time.monotonic() - started < 4.5:
            line = await response.content.readline()
            if line.startswith(b":"):
                comments.append(line)
    # One per interval, give or take the ring's visit period (half an interval).
    assert 3 <= len(comments) <= 5, comments
    assert set(comments) == {b": ping\r\n"}
    await publish(client, alice, channel, 7)
    [event] = await sse_events(response, 1)
    assert event["event"] == "publication"
    response.close()


async def test_a_stream_the_server_ends_is_a_whole_body_then_the_socket_closes(
    client: Any, alice: Account
) -> None:
    response, hello = await open_sse(client, alice, [unique()])
    connection = client.app[hub_key].connections[hello["client_id"]]
    connection.close_soon(Close.SESSION_REVOKED, "session revoked: test")
    [event] = await sse_events(response, 1)
    assert event["event"] == "close"
    # The chunked body ends properly (aiohttp's client raises on a truncated one).
    assert await asyncio.wait_for(response.content.read(), 5) == b""
    hub = client.app[hub_key]
    await forgotten(hub, hello["client_id"])
    response.close()


async def test_a_stream_whose_subscribing_fails_ends_with_1011(
    client: Any, alice: Account, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis lost between the checks (before the 200) and the subscription: the stream says
    why and ends; the hub forgets it."""
    hub = client.app[hub_key]

    async def redis_gone(*args: Any, **kwargs: Any) -> Any:
        raise RedisConnectionError("Redis went away")

    monkeypatch.setattr(hub, "subscribe", redis_gone)
    response = await client.get(
        "/realtime/events", params={"channels": unique()}, headers=alice.headers
    )
    assert response.status == 200
    events = await sse_events(response, 2)
    assert [event["event"] for event in events] == ["connected", "close"]
    assert orjson.loads(events[1]["data"])["code"] == Close.INTERNAL
    assert await asyncio.wait_for(response.content.read(), 5) == b""
    client_id = orjson.loads(events[0]["data"])["client_id"]
    await forgotten(hub, client_id)
    assert any("subscribing failed" in record.message for record in caplog.records)
    response.close()
