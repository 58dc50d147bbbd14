"""The server peer answers offers from aiortc clients: data channel echo, over signaling and
over the WHIP-style HTTP endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.app import create_app
from tests.conftest import make_settings
from tests.support.accounts import Account
from tests.support.rtc import accept_answer, client_peer, offer_sdp, wait_open
from tests.support.rtc_media import server_peers


@pytest.fixture
def app(settings: Any) -> Any:
    return create_app(
        make_settings(POSTGRES_DB=settings.POSTGRES_DB, ICE_HOST_ADDRESSES="127.0.0.1")
    )


async def create_room(client: Any, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/realtime/webrtc/rooms", json={"name": "r", **fields}, headers=account.headers
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def next_of(ws: Any, kind: str, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive_json()
            if frame["type"] in (kind, "error"):
                return dict(frame)


async def echo_round_trip(pc: Any, channel: Any) -> str:
    await wait_open(channel)
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    channel.on("message", lambda message: got.done() or got.set_result(message))
    channel.send("hello server")
    return await asyncio.wait_for(got, 10)


async def echo_through_signaling(ws: Any, pc: Any) -> None:
    """Offer an `echo` data channel to the server peer over signaling; one echo back."""
    channel = pc.createDataChannel("echo")
    await ws.send_json({"type": "offer", "to": "server", "sdp": await offer_sdp(pc)})
    answer = await next_of(ws, "answer")
    assert answer["from"] == "server", answer
    await accept_answer(pc, answer["sdp"])
    assert await echo_round_trip(pc, channel) == "hello server"


async def test_data_channel_echo_through_signaling(client: Any, alice: Account) -> None:
    room = await create_room(client, alice)
    ws = await client.ws_connect("/realtime/webrtc/signaling", headers=alice.headers)
    await next_of(ws, "connected")
    await ws.send_json({"type": "join", "room": room["id"]})
    joined = await next_of(ws, "joined")
    assert joined["participants"] == []
    pc = client_peer()
    await echo_through_signaling(ws, pc)
    await pc.close()
    await ws.close()


async def test_data_channel_echo_over_http_offer(client: Any, alice: Account) -> None:
    pc = client_peer()
    channel = pc.createDataChannel("echo")
    response = await client.post(
        "/realtime/webrtc/offer",
        json={"sdp": await offer_sdp(pc), "type": "offer"},
        headers=alice.headers,
    )
    assert response.status == 201, await response.text()
    await accept_answer(pc, (await response.json())["sdp"])
    assert await echo_round_trip(pc, channel) == "hello server"
    await pc.close()


async def test_a_new_peer_connection_on_the_same_signaling_connection_replaces_its_peer(
    client: Any, alice: Account, admin: Account
) -> None:
    """After a network change the client makes a new peer connection (new ICE credentials)
    and offers it on the signaling connection it still has: the server peer of that
    connection is replaced (answered by the old one, it would never connect)."""
    room = await create_room(client, alice)
    ws = await client.ws_connect("/realtime/webrtc/signaling", headers=alice.headers)
    await next_of(ws, "connected")
    await ws.send_json({"type": "join", "room": room["id"]})
    await next_of(ws, "joined")
    peers = []
    try:
        for _ in range(2):
            pc = client_peer()
            peers.append(pc)
            await echo_through_signaling(ws, pc)
            if len(peers) == 1:
                [first] = await server_peers(client, admin)
        [second] = await server_peers(client, admin)
        assert second["peer_id"] != first["peer_id"]
        assert second["state"] == "connected"
    finally:
        for pc in peers:
            await pc.close()
        await ws.close()
