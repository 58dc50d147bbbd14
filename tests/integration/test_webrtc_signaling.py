"""Two aiortc clients in a room find each other through signaling: membership events, and
offer, answer and trickled candidates relayed between them until they connect directly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription

from server.kernel.settings import Settings
from signaling.peers import peers_key
from tests.support.accounts import Account
from tests.support.rtc import client_peer, wait_open
from tests.support.rtc_media import (
    Signaling,
    add_candidate,
    create_room,
    rtc_app,
    split_candidates,
    wait_connected,
)


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads")


async def two_members(
    client: Any, alice: Account, bob: Account
) -> tuple[dict[str, Any], Signaling, Signaling]:
    room = await create_room(client, alice)
    a = await Signaling.open(client, alice)
    b = await Signaling.open(client, bob)
    joined_a = await a.join(room["id"])
    assert joined_a["participants"] == []
    assert joined_a["peer_id"] == a.peer_id
    joined_b = await b.join(room["id"])
    assert joined_b["participants"] == [{"peer_id": a.peer_id, "user_id": alice.id}]
    arrived = await a.next("peer-joined")
    assert arrived == {
        "type": "peer-joined",
        "room": room["id"],
        "peer_id": b.peer_id,
        "user_id": bob.id,
    }
    return room, a, b


async def send_candidates(signaling: Signaling, to: str, candidates: list[dict[str, Any]]) -> None:
    for candidate in [*candidates, None]:
        await signaling.send({"type": "candidate", "to": to, "candidate": candidate})


async def apply_candidates(signaling: Signaling, pc: RTCPeerConnection, sender: str) -> int:
    """Apply relayed candidates until the end-of-candidates null; returns how many came."""
    count = 0
    while True:
        frame = await signaling.next("candidate")
        assert frame["type"] == "candidate" and frame["from"] == sender, frame
        await add_candidate(pc, frame["candidate"])
        if frame["candidate"] is None:
            return count
        count += 1


async def test_members_see_each_other_join_leave_and_disconnect(
    client: Any, alice: Account, bob: Account
) -> None:
    room, a, b = await two_members(client, alice, bob)
    left = await b.request({"type": "leave", "id": 1}, "left")
    assert left == {"type": "left", "room": room["id"], "id": 1}
    gone = await a.next("peer-left")
    assert gone["peer_id"] == b.peer_id and gone["user_id"] == bob.id
    assert gone["reason"] == "left"

    rejoined = await b.join(room["id"])
    assert rejoined["participants"] == [{"peer_id": a.peer_id, "user_id": alice.id}]
    assert (await a.next("peer-joined"))["peer_id"] == b.peer_id
    await b.close()
    gone = await a.next("peer-left")
    assert gone["peer_id"] == b.peer_id and gone["reason"] == "disconnected"
    await a.ping()
    await a.close()


async def test_two_clients_connect_directly_through_relayed_signals(
    client: Any, alice: Account, bob: Account
) -> None:
    room, a, b = await two_members(client, alice, bob)
    pc_a, pc_b = client_peer(), client_peer()
    chat = pc_a.createDataChannel("chat")
    bob_channel: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pc_b.on("datachannel", bob_channel.set_result)

    await pc_a.setLocalDescription(await pc_a.createOffer())
    offer_sdp, offer_candidates = split_candidates(pc_a.localDescription.sdp)
    assert offer_candidates and "a=candidate" not in offer_sdp
    await a.send({"type": "offer", "to": b.peer_id, "sdp": offer_sdp})
    await send_candidates(a, b.peer_id, offer_candidates)

    offer = await b.next("offer")
    assert offer["from"] == a.peer_id and offer["from_user"] == alice.id, offer
    assert offer["room"] == room["id"] and offer["sdp"] == offer_sdp
    await pc_b.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
    await pc_b.setLocalDescription(await pc_b.createAnswer())
    answer_sdp, answer_candidates = split_candidates(pc_b.localDescription.sdp)
    await b.send({"type": "answer", "to": a.peer_id, "sdp": answer_sdp})
    await send_candidates(b, a.peer_id, answer_candidates)
    assert await apply_candidates(b, pc_b, a.peer_id) == len(offer_candidates)

    answer = await a.next("answer")
    assert answer["from"] == b.peer_id and answer["sdp"] == answer_sdp, answer
    await pc_a.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    assert await apply_candidates(a, pc_a, b.peer_id) == len(answer_candidates)

    await asyncio.gather(wait_connected(pc_a), wait_connected(pc_b))
    assert pc_a.connectionState == pc_b.connectionState == "connected"
    channel = await asyncio.wait_for(bob_channel, 10)
    assert channel.label == "chat"
    await wait_open(chat)
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    channel.on("message", lambda message: got.done() or got.set_result(message))
    chat.send("hello bob, directly")
    assert await asyncio.wait_for(got, 10) == "hello bob, directly"
    # not through the server: it has no peer of either connection
    assert client.app[peers_key].peers == {}
    await pc_a.close()
    await pc_b.close()
    await a.close()
    await b.close()


async def test_candidates_trickled_to_the_server_peer_connect_it(
    client: Any, alice: Account
) -> None:
    """An offer without candidates (as browsers trickle them) and the candidates after it."""
    room = await create_room(client, alice, media=False)
    signaling = await Signaling.open(client, alice)
    await signaling.join(room["id"])
    pc = client_peer()
    channel = pc.createDataChannel("echo")
    await pc.setLocalDescription(await pc.createOffer())
    sdp, candidates = split_candidates(pc.localDescription.sdp)
    answer = await signaling.request({"type": "offer", "to": "server", "sdp": sdp}, "answer")
    assert answer["type"] == "answer", answer
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    for candidate in [*candidates, None]:
        await signaling.send({"type": "candidate", "to": "server", "candidate": candidate, "id": 7})
    await wait_connected(pc)
    await wait_open(channel)
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    channel.on("message", lambda message: got.done() or got.set_result(message))
    channel.send("trickled")
    assert await asyncio.wait_for(got, 10) == "trickled"
    await signaling.ping()  # and no error frame came for any candidate
    assert not [f for f in signaling.pending if f["type"] == "error"]
    await pc.close()
    await signaling.close()
