"""Bad signaling gets an error frame (with the message's ref) and the connection goes on
answering; refused offers leave no server peer behind."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from server.kernel.settings import Settings
from signaling.peers import peers_key
from tests.support.accounts import Account
from tests.support.rtc import client_peer, offer_sdp
from tests.support.rtc_media import ColorVideoTrack, Signaling, create_room, rtc_app

# An SDP document only as far as the model's check goes (relayed, never applied).
TINY_SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads")


async def expect_error(signaling: Signaling, frame: dict[str, Any], code: str) -> dict[str, Any]:
    """Send `frame` (with an id), get the error `code` for it, and a pong after it."""
    frame = {"id": f"{frame['type']}-{uuid.uuid4().hex[:6]}", **frame}
    reply = await signaling.request(frame)  # only the error is expected
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert reply["ref"] == frame["id"], reply
    await signaling.ping()
    return reply


async def member(client: Any, account: Account, **room: Any) -> tuple[dict[str, Any], Signaling]:
    created = await create_room(client, account, **room)
    signaling = await Signaling.open(client, account)
    await signaling.join(created["id"])
    return created, signaling


@pytest.mark.parametrize(
    ("sdp", "code"),
    [
        ("hello", "invalid"),
        ("", "invalid"),
        ("v=0\r\nthis is no SDP\r\n", "bad_sdp"),
        (TINY_SDP, "bad_sdp"),
        ("v=0\r\nm=audio x UDP/TLS/RTP/SAVPF 111\r\n", "bad_sdp"),
        ("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF abc\r\n", "bad_sdp"),
        (TINY_SDP + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n", "bad_sdp"),
        (
            TINY_SDP + "m=application 9 DTLS/SCTP 5000\r\nc=IN IP4 0.0.0.0\r\na=candidate:1\r\n",
            "bad_sdp",
        ),
    ],
    ids=[
        "not-sdp",
        "empty",
        "garbage",
        "no-sections",
        "bad-port",
        "bad-format",
        "no-ice-credentials",
        "bad-candidate",
    ],
)
async def test_malformed_sdp_to_the_server(
    client: Any, alice: Account, sdp: str, code: str
) -> None:
    _, signaling = await member(client, alice)
    await expect_error(signaling, {"type": "offer", "to": "server", "sdp": sdp}, code)
    assert client.app[peers_key].peers == {}
    # the connection can still call the server properly
    pc = client_peer()
    pc.createDataChannel("echo")
    await signaling.call_server(pc)
    assert len(client.app[peers_key].peers) == 1
    await pc.close()
    await signaling.close()


@pytest.mark.parametrize(
    "sdp",
    [
        "v=0\r\nm=audio x UDP/TLS/RTP/SAVPF 111\r\n",
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF abc\r\n",
        TINY_SDP,
    ],
    ids=["assertion", "value", "no-sections"],
)
async def test_malformed_sdp_over_http_is_a_400_and_leaves_no_peer(
    client: Any, alice: Account, sdp: str
) -> None:
    response = await client.post(
        "/realtime/webrtc/offer", json={"sdp": sdp, "type": "offer"}, headers=alice.headers
    )
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]["code"] == "bad_sdp"
    assert client.app[peers_key].peers == {}


async def test_http_offer_validation(client: Any, alice: Account, bob: Account) -> None:
    pc = client_peer()
    pc.createDataChannel("echo")
    sdp = await offer_sdp(pc)
    url = "/realtime/webrtc/offer"
    assert (await client.post(url, json={"sdp": sdp, "type": "offer"})).status == 401
    for body in (
        {"sdp": "hello", "type": "offer"},
        {"sdp": sdp, "type": "answer"},
        {"sdp": sdp, "type": "offer", "extra": 1},
    ):
        response = await client.post(url, json=body, headers=alice.headers)
        assert response.status == 422, body
    private = await create_room(client, alice, allowed_user_ids=[])
    hidden = await client.post(
        url, json={"sdp": sdp, "type": "offer", "room": private["id"]}, headers=bob.headers
    )
    assert hidden.status == 404
    assert client.app[peers_key].peers == {}
    await pc.close()


async def test_signals_to_peers_outside_the_room(client: Any, alice: Account, bob: Account) -> None:
    _, a = await member(client, alice)
    _, b = await member(client, bob)  # another room
    outsider = await Signaling.open(client, bob)  # in no room at all
    for to in (b.peer_id, outsider.peer_id, a.peer_id, "nobody-at-all"):
        await expect_error(a, {"type": "offer", "to": to, "sdp": TINY_SDP}, "peer_not_in_room")
        await expect_error(a, {"type": "answer", "to": to, "sdp": TINY_SDP}, "peer_not_in_room")
        await expect_error(
            a, {"type": "candidate", "to": to, "candidate": None}, "peer_not_in_room"
        )
    assert [f for f in b.pending if f["type"] in ("offer", "answer", "candidate")] == []
    for signaling in (a, b, outsider):
        await signaling.close()


async def test_candidates_and_answers_for_the_server(client: Any, alice: Account) -> None:
    _, signaling = await member(client, alice)
    candidate = {
        "candidate": "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    await expect_error(
        signaling, {"type": "candidate", "to": "server", "candidate": candidate}, "no_peer"
    )
    await expect_error(
        signaling, {"type": "candidate", "to": "server", "candidate": None}, "no_peer"
    )
    await expect_error(signaling, {"type": "answer", "to": "server", "sdp": TINY_SDP}, "bad_signal")
    pc = client_peer()
    pc.createDataChannel("echo")
    await signaling.call_server(pc)
    for bad in (
        {"candidate": "candidate:garbage", "sdpMid": "0", "sdpMLineIndex": 0},
        {"candidate": "candidate:1 1 udp 1 127.0.0.1 notaport typ host", "sdpMid": "0"},
        {"candidate": candidate["candidate"]},  # neither sdpMid nor sdpMLineIndex
    ):
        await expect_error(
            signaling, {"type": "candidate", "to": "server", "candidate": bad}, "bad_candidate"
        )
    await expect_error(
        signaling,
        {"type": "candidate", "to": "server", "candidate": {**candidate, "extra": 1}},
        "invalid",
    )
    await pc.close()
    await signaling.close()


async def test_joining_a_full_room(client: Any, alice: Account, bob: Account) -> None:
    room, a = await member(client, alice, max_participants=1)
    b = await Signaling.open(client, bob)
    error = await expect_error(b, {"type": "join", "room": room["id"]}, "room_full")
    assert "1" in error["message"]
    await a.request({"type": "leave"}, "left")
    await b.join(room["id"])  # the place is free again
    await expect_error(a, {"type": "join", "room": room["id"]}, "room_full")
    await a.close()
    await b.close()


async def test_joining_a_room_that_does_not_exist(client: Any, alice: Account) -> None:
    signaling = await Signaling.open(client, alice)
    await expect_error(signaling, {"type": "join", "room": str(uuid.uuid4())}, "room_not_found")
    await expect_error(signaling, {"type": "join", "room": "lobby"}, "invalid")
    await expect_error(signaling, {"type": "join"}, "invalid")
    deleted = await create_room(client, alice)
    gone = await client.delete(f"/realtime/webrtc/rooms/{deleted['id']}", headers=alice.headers)
    assert gone.status == 204
    await expect_error(signaling, {"type": "join", "room": deleted["id"]}, "room_not_found")
    await signaling.close()


async def test_joining_twice(client: Any, alice: Account) -> None:
    room, signaling = await member(client, alice)
    other = await create_room(client, alice)
    await expect_error(signaling, {"type": "join", "room": room["id"]}, "already_in_room")
    await expect_error(signaling, {"type": "join", "room": other["id"]}, "already_in_room")
    await signaling.request({"type": "leave"}, "left")
    await signaling.join(other["id"])
    await signaling.close()


async def test_signaling_without_joining(client: Any, alice: Account, bob: Account) -> None:
    signaling = await Signaling.open(client, alice)
    someone = await Signaling.open(client, bob)
    pc = client_peer()
    pc.createDataChannel("echo")
    sdp = await offer_sdp(pc)
    await expect_error(signaling, {"type": "offer", "to": "server", "sdp": sdp}, "not_in_room")
    await expect_error(
        signaling, {"type": "offer", "to": someone.peer_id, "sdp": sdp}, "not_in_room"
    )
    await expect_error(
        signaling, {"type": "answer", "to": someone.peer_id, "sdp": sdp}, "not_in_room"
    )
    await expect_error(
        signaling, {"type": "candidate", "to": someone.peer_id, "candidate": None}, "not_in_room"
    )
    await expect_error(signaling, {"type": "leave"}, "not_in_room")
    assert client.app[peers_key].peers == {}
    await pc.close()
    await signaling.close()
    await someone.close()


async def test_a_signaling_flood_is_rate_limited_and_the_connection_stays_usable(
    client: Any, alice: Account, bob: Account
) -> None:
    room, a = await member(client, alice)
    b = await Signaling.open(client, bob)
    await b.join(room["id"])
    total = 500
    for n in range(total):
        await a.send({"type": "offer", "to": b.peer_id, "sdp": TINY_SDP, "id": n})
    await a.send({"type": "ping", "id": "after"})
    limited: list[int] = []
    async with asyncio.timeout(10):
        while (frame := await a.next("pong"))["type"] != "pong":
            assert frame["code"] == "rate_limited", frame
            limited.append(frame["ref"])
    assert limited, "500 offers at once were all accepted"
    assert len(limited) < total
    relayed = total - len(limited)
    offers = [f for f in b.pending if f["type"] == "offer"]
    async with asyncio.timeout(10):
        while len(offers) < relayed:
            offers.append(await b.next("offer", errors=False))
    assert all(o["from"] == a.peer_id for o in offers)
    assert len(offers) == relayed  # every offer was either relayed or refused
    # a moment later signaling works again
    await asyncio.sleep(0.5)
    await a.send({"type": "offer", "to": b.peer_id, "sdp": TINY_SDP, "id": "later"})
    assert (await b.next("offer"))["from"] == a.peer_id
    await a.ping()
    await a.close()
    await b.close()


async def test_an_unauthenticated_signaling_connection_is_refused(client: Any) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/realtime/webrtc/signaling")
    assert refused.value.status == 401
    plain = await client.get("/realtime/webrtc/signaling")
    assert plain.status == 401
    assert (await plain.json())["error"]
    bad = {"Authorization": "Bearer not-a-token"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/realtime/webrtc/signaling", headers=bad)
    assert refused.value.status == 401


async def test_media_offer_in_a_data_only_room(client: Any, alice: Account) -> None:
    _, signaling = await member(client, alice, media=False)
    media = client_peer()
    media.addTrack(ColorVideoTrack())
    await expect_error(
        signaling,
        {"type": "offer", "to": "server", "sdp": await offer_sdp(media)},
        "media_disabled",
    )
    assert client.app[peers_key].peers == {}
    data = client_peer()
    data.createDataChannel("echo")
    await signaling.call_server(data)  # data channels are fine
    await media.close()
    await data.close()
    await signaling.close()
