"""WSClient reconnects by itself and recovers every channel from its last cursor: no
publication is lost or repeated across a dropped connection."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from realtime_client import ConnectionClosed, ConnectionLost, WSClient

from tests.integration.test_clients_ws import ws_url
from tests.support.accounts import Account


async def kill(ws: WSClient, how: str) -> None:
    """Drop the client's connection behind its back."""
    socket = ws._ws
    assert socket is not None
    if how == "close":
        await socket.close()
    else:  # the TCP connection dies without a closing handshake
        connection = socket._conn
        assert connection is not None and connection.transport is not None
        connection.transport.abort()


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_publications_survive_a_reconnect_exactly_once_in_order(
    client: Any, alice: Account, bob: Account, how: str
) -> None:
    channel = f"public:sdk-reconnect-{how}"
    async with (
        WSClient(ws_url(client), token=alice.access_token, reconnect_delay=0.05) as subscriber,
        WSClient(ws_url(client), token=bob.access_token) as publisher,
    ):
        await subscriber.subscribe(channel)
        await subscriber.subscribe("public:sdk-reconnect-idle")  # resubscribed too
        replayed: list[int] = []  # publications the server replayed on resubscribing
        on_text = subscriber._on_text

        async def spy(frame: dict[str, Any]) -> None:
            if frame["type"] == "subscribed" and frame["channel"] == channel:
                replayed.extend(p["data"]["n"] for p in frame["publications"])
            await on_text(frame)

        subscriber._on_text = spy  # type: ignore[method-assign]
        received: list[Any] = []
        five_seen = asyncio.Event()

        async def publish_all() -> None:
            for n in range(20):
                await publisher.publish(channel, {"n": n})
                if n == 4:
                    await five_seen.wait()
                    await kill(subscriber, how)
                await asyncio.sleep(0.01)

        publishing = asyncio.create_task(publish_all())
        async with asyncio.timeout(15), contextlib.aclosing(subscriber.messages()) as stream:
            async for message in stream:
                if isinstance(message, dict) and message["type"] == "publication":
                    received.append(message["data"]["n"])
                    if len(received) == 5:
                        five_seen.set()
                    if len(received) == 20:
                        break
        await publishing
        assert received == list(range(20))
        assert subscriber.reconnects == 1
        assert replayed, "the disconnect was too short to miss anything"
        assert replayed == list(range(replayed[0], replayed[0] + len(replayed)))
        assert set(subscriber.channels) == {channel, "public:sdk-reconnect-idle"}

        # nothing arrives twice later, and the new connection carries live publications
        await publisher.publish(channel, {"n": 20})
        async with asyncio.timeout(5), contextlib.aclosing(subscriber.messages()) as stream:
            async for message in stream:
                if isinstance(message, dict) and message["type"] == "publication":
                    assert message["data"] == {"n": 20}
                    break


async def test_requests_wait_for_the_reconnect(client: Any, alice: Account) -> None:
    async with WSClient(ws_url(client), token=alice.access_token, reconnect_delay=0.05) as ws:
        first = ws.client_id
        await kill(ws, "abort")
        reply = await ws.subscribe("public:sdk-wait")  # sent once the new connection is up
        assert reply["type"] == "subscribed"
        assert ws.client_id != first
        assert ws.connected


async def test_lost_history_is_reported_as_a_gap(client: Any, alice: Account, bob: Account) -> None:
    async with (
        WSClient(ws_url(client), token=alice.access_token, reconnect_delay=0.05) as ws,
        WSClient(ws_url(client), token=bob.access_token) as publisher,
    ):
        await ws.subscribe("public:sdk-gap")
        ws._channels["public:sdk-gap"] = "feedface:1"  # a position no history has
        await kill(ws, "close")
        await publisher.ping()
        async with asyncio.timeout(5), contextlib.aclosing(ws.messages()) as stream:
            async for message in stream:
                assert isinstance(message, dict)
                if message["type"] == "gap":
                    break
        assert message["channel"] == "public:sdk-gap"
        assert ws.channels["public:sdk-gap"] == message["cursor"]


async def ping_until_closed(ws: WSClient) -> None:
    """Ping until the client is closed for good (ConnectionClosed propagates)."""
    async with asyncio.timeout(5):
        while True:
            with contextlib.suppress(ConnectionLost):  # a request cut short by the close
                await ws.ping("after")
            await asyncio.sleep(0.02)


async def test_a_revoked_session_ends_the_client_instead_of_reconnecting(
    client: Any, alice: Account
) -> None:
    async with WSClient(ws_url(client), token=alice.access_token, reconnect_delay=0.05) as ws:
        assert (await ws.ping("before"))["type"] == "pong"
        response = await client.post(
            "/auth/logout", json={"refresh_token": alice.refresh_token}, headers=alice.headers
        )
        assert response.status == 204
        with pytest.raises(ConnectionClosed) as ended:
            await ping_until_closed(ws)
        assert ended.value.close_code == 4003
        assert ws.reconnects == 0
        assert not ws.connected
