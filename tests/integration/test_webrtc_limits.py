"""Per-process limits on server peers: WEBRTC_MAX_PEERS and WEBRTC_MAX_MEDIA_PEERS refuse
new peers (an error frame over signaling, 503 over HTTP) and free their places again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.kernel.settings import Settings
from signaling.peers import peers_key
from tests.support.accounts import Account
from tests.support.rtc import client_peer, offer_sdp
from tests.support.rtc_media import ColorVideoTrack, Signaling, create_room, rtc_app
from tests.support.waiting import eventually


@pytest.fixture
def app(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads", **request.param)


def data_peer() -> Any:
    pc = client_peer()
    pc.createDataChannel("echo")
    return pc


def media_peer() -> Any:
    pc = client_peer()
    pc.addTrack(ColorVideoTrack())
    return pc


async def http_offer(client: Any, account: Account, pc: Any) -> Any:
    return await client.post(
        "/realtime/webrtc/offer",
        json={"sdp": await offer_sdp(pc), "type": "offer"},
        headers=account.headers,
    )


async def alice_calling_bob_joined(
    client: Any, alice: Account, bob: Account, first: Any
) -> tuple[Signaling, Signaling]:
    """Alice in a new room, calling the server with `first`; bob joined the same room."""
    room = await create_room(client, alice)
    a = await Signaling.open(client, alice)
    await a.join(room["id"])
    await a.call_server(first)
    b = await Signaling.open(client, bob)
    await b.join(room["id"])
    return a, b


async def no_peers_left(client: Any) -> None:
    async def empty() -> bool:
        return not client.app[peers_key].peers

    await eventually(empty)


@pytest.mark.parametrize("app", [{"WEBRTC_MAX_PEERS": 1}], indirect=True)
async def test_max_peers_refuses_a_second_server_peer(
    client: Any, alice: Account, bob: Account
) -> None:
    first = data_peer()
    a, b = await alice_calling_bob_joined(client, alice, bob, first)
    # renegotiating the same connection's peer is no new peer
    await a.call_server(first)
    assert len(client.app[peers_key].peers) == 1

    second = data_peer()
    refused = await b.request(
        {"type": "offer", "to": "server", "sdp": await offer_sdp(second), "id": 2}, "answer"
    )
    assert refused["type"] == "error" and refused["code"] == "too_many_peers", refused
    assert refused["ref"] == 2
    await b.ping()
    third = data_peer()
    over_http = await http_offer(client, bob, third)
    assert over_http.status == 503
    assert (await over_http.json())["error"]["code"] == "too_many_peers"
    assert len(client.app[peers_key].peers) == 1

    await a.request({"type": "leave"}, "left")  # closes alice's peer: a place is free
    await no_peers_left(client)
    await b.call_server(second)
    for closing in (first, second, third, a, b):
        await closing.close()


@pytest.mark.parametrize(
    "app", [{"WEBRTC_MAX_PEERS": 5, "WEBRTC_MAX_MEDIA_PEERS": 1}], indirect=True
)
async def test_max_media_peers_refuses_media_but_not_data(
    client: Any, alice: Account, bob: Account
) -> None:
    first = media_peer()
    a, b = await alice_calling_bob_joined(client, alice, bob, first)
    second, third = media_peer(), media_peer()
    refused = await b.request(
        {"type": "offer", "to": "server", "sdp": await offer_sdp(second)}, "answer"
    )
    assert refused["type"] == "error" and refused["code"] == "too_many_media_peers", refused
    over_http = await http_offer(client, bob, third)
    assert over_http.status == 503
    assert (await over_http.json())["error"]["code"] == "too_many_media_peers"
    data = data_peer()
    await b.call_server(data)  # data channels only: still welcome
    assert len(client.app[peers_key].peers) == 2
    for closing in (first, second, third, data, a, b):
        await closing.close()
    await no_peers_left(client)


@pytest.mark.parametrize("app", [{"WEBRTC_RELAY_MAX_MEMBERS": 1}], indirect=True)
async def test_media_is_not_relayed_in_rooms_over_the_relay_size(
    client: Any, alice: Account, bob: Account
) -> None:
    first = media_peer()
    # two members: over the relay size, and alice sends media
    a, b = await alice_calling_bob_joined(client, alice, bob, first)
    second = media_peer()
    refused = await b.request(
        {"type": "offer", "to": "server", "sdp": await offer_sdp(second)}, "answer"
    )
    assert refused["type"] == "error", refused
    assert refused["code"] == "room_too_large_for_media", refused
    data = data_peer()
    await b.call_server(data)
    # alice's own tracks are never relayed back to her: she may renegotiate her media
    await a.call_server(first)
    for closing in (first, second, data, a, b):
        await closing.close()
    await no_peers_left(client)
