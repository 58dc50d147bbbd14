"""Server peers end with their client: on leave, on disconnect, when the client hangs up or
vanishes (the peer fails), and on app shutdown. GET /realtime/webrtc/peers (admins) lists
them with their state and stats while they live."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aioice.ice
import aioice.stun
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiortc import RTCPeerConnection

from server.kernel.settings import Settings
from signaling.peers import PeerManager, peers_key
from storage.db import transaction
from storage.tables import files
from tests.support.accounts import Account
from tests.support.rtc import accept_answer, client_peer, offer_sdp, wait_open
from tests.support.rtc_media import (
    ColorVideoTrack,
    Signaling,
    create_room,
    rtc_app,
    server_peers,
    wait_connected,
)
from tests.support.waiting import eventually

PEERS = "/realtime/webrtc/peers"


@pytest.fixture
def upload_dir(tmp_path: Path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
def app(settings: Settings, upload_dir: Path) -> web.Application:
    return rtc_app(settings, upload_dir)


async def echo(channel: Any, text: str) -> None:
    await wait_open(channel)
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    channel.on("message", lambda message: got.done() or got.set_result(message))
    channel.send(text)
    assert await asyncio.wait_for(got, 10) == text


async def member_with_peer(
    client: Any, account: Account, room: dict[str, Any], *labels: str
) -> tuple[Signaling, RTCPeerConnection]:
    signaling = await Signaling.open(client, account)
    await signaling.join(room["id"])
    pc = client_peer()
    channel = pc.createDataChannel("echo")
    for label in labels:
        pc.createDataChannel(label)
    await signaling.call_server(pc)
    await wait_connected(pc)
    await echo(channel, f"hello from {account.username}")
    return signaling, pc


async def peer_count_becomes(client: Any, admin: Account, count: int) -> list[dict[str, Any]]:
    async def reached() -> tuple[list[dict[str, Any]]] | None:
        peers = await server_peers(client, admin)
        return (peers,) if len(peers) == count else None

    [found] = await eventually(reached, timeout=15)
    return found


async def ended(pc: RTCPeerConnection) -> bool:
    return pc.connectionState in ("closed", "failed")


async def test_peers_are_listed_for_admins_only_with_state_and_stats(
    client: Any, alice: Account, admin: Account
) -> None:
    assert (await client.get(PEERS)).status == 401
    assert (await client.get(PEERS, headers=alice.headers)).status == 403
    assert await server_peers(client, admin) == []

    room = await create_room(client, alice, media=False)
    signaling, pc = await member_with_peer(client, alice, room, "public:lifecycle-stats")

    async def with_bridge() -> list[dict[str, Any]]:
        peers = await server_peers(client, admin)
        return peers if peers and peers[0]["data_channels"] else []

    [peer] = await eventually(with_bridge)
    assert peer["state"] == "connected"
    assert peer["user_id"] == alice.id
    assert peer["room"] == room["id"]
    assert peer["client_id"] == signaling.peer_id
    assert peer["media"] is False and peer["recording"] is False
    assert peer["data_channels"] == ["public:lifecycle-stats"]
    assert 0 <= peer["seconds_to_connect"] < 15
    assert peer["created_at"] > 0
    assert peer["bytes_sent"] > 0 and peer["bytes_received"] > 0
    assert peer["peer_id"] in client.app[peers_key].peers
    await pc.close()
    await signaling.close()
    await peer_count_becomes(client, admin, 0)


async def test_leaving_and_disconnecting_close_the_peers(
    client: Any, alice: Account, bob: Account, admin: Account
) -> None:
    room = await create_room(client, alice, media=False)
    a, pc_a = await member_with_peer(client, alice, room)
    b, pc_b = await member_with_peer(client, bob, room)
    peers = await server_peers(client, admin)
    assert sorted(p["user_id"] for p in peers) == sorted([alice.id, bob.id])
    assert {p["state"] for p in peers} == {"connected"}

    await a.request({"type": "leave"}, "left")
    [left] = await peer_count_becomes(client, admin, 1)
    assert left["user_id"] == bob.id and left["client_id"] == b.peer_id
    await eventually(lambda: ended(pc_a))
    assert pc_b.connectionState == "connected"

    await b.close()
    await peer_count_becomes(client, admin, 0)
    await eventually(lambda: ended(pc_b))
    await a.ping()  # alice is still connected, in no room, with no peer
    await pc_a.close()
    await pc_b.close()
    await a.close()


async def test_a_client_hanging_up_closes_the_peer(
    client: Any, alice: Account, admin: Account
) -> None:
    room = await create_room(client, alice, media=False)
    signaling, pc = await member_with_peer(client, alice, room)

    http_pc = client_peer()
    channel = http_pc.createDataChannel("echo")
    response = await client.post(
        "/realtime/webrtc/offer",
        json={"sdp": await offer_sdp(http_pc), "type": "offer"},
        headers=alice.headers,
    )
    assert response.status == 201
    answer = await response.json()
    await accept_answer(http_pc, answer["sdp"])
    await echo(channel, "over http")
    peers = await peer_count_becomes(client, admin, 2)
    by_id = {p["peer_id"]: p for p in peers}
    assert by_id[answer["peer_id"]]["client_id"] is None
    assert by_id[answer["peer_id"]]["room"] is None

    await http_pc.close()
    [remaining] = await peer_count_becomes(client, admin, 1)
    assert remaining["client_id"] == signaling.peer_id
    await pc.close()  # the signaling connection stays, its peer goes
    await peer_count_becomes(client, admin, 0)
    await signaling.ping()
    await signaling.close()


async def test_a_vanished_client_ends_the_peer(
    client: Any, alice: Account, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client disappears without a word (its sockets close, no DTLS close_notify): ICE
    consent expires (shortened here to about a second) and the peer is closed."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 2)
    room = await create_room(client, alice, media=False)
    signaling, pc = await member_with_peer(client, alice, room)
    [peer] = await server_peers(client, admin)
    server_pc = client.app[peers_key].peers[peer["peer_id"]].pc
    ice: list[str] = []
    server_pc.on("iceconnectionstatechange", lambda: ice.append(server_pc.iceConnectionState))

    connection = pc.sctp.transport.transport._connection
    for protocol in connection._protocols:
        protocol.transport.close()

    await peer_count_becomes(client, admin, 0)
    assert server_pc.connectionState == "closed"
    assert ice[-1] == "closed"
    await signaling.ping()  # the signaling connection is not affected
    await pc.close()
    await signaling.close()


async def test_a_peer_that_never_connects_fails_and_is_closed(
    client: Any, alice: Account, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTTP offer whose client goes away before connecting: the server's ICE checks
    fail (STUN retransmissions shortened here) and the failed peer is closed."""
    monkeypatch.setattr(aioice.stun, "RETRY_MAX", 1)
    pc = client_peer()
    pc.createDataChannel("echo")
    response = await client.post(
        "/realtime/webrtc/offer",
        json={"sdp": await offer_sdp(pc), "type": "offer"},
        headers=alice.headers,
    )
    assert response.status == 201
    peer_id = (await response.json())["peer_id"]
    server_pc = client.app[peers_key].peers[peer_id].pc
    states: list[str] = []
    server_pc.on("connectionstatechange", lambda: states.append(server_pc.connectionState))
    await pc.close()  # without ever applying the answer

    await peer_count_becomes(client, admin, 0)
    assert states[-2:] == ["failed", "closed"], states


@pytest.mark.parametrize("storing_delay", [0.0, 0.5], ids=["at-once", "slow-to-store"])
async def test_shutdown_closes_every_peer_and_keeps_recordings(
    client: Any,
    alice: Account,
    bob: Account,
    admin: Account,
    db: Any,
    upload_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    storing_delay: float,
) -> None:
    """With a slow disk, the peer closed by its connection's going-away may still be storing
    its recording when the app's resources close: shutdown waits for it (the database pool
    closed under it once, and the recording was lost)."""
    store = PeerManager._register_recording

    async def slow_store(self: PeerManager, peer: Any) -> None:
        await asyncio.sleep(storing_delay)
        await store(self, peer)

    monkeypatch.setattr(PeerManager, "_register_recording", slow_store)
    room = await create_room(client, alice, media=False)
    a, pc_a = await member_with_peer(client, alice, room)
    recorded = await create_room(client, bob, record=True)
    b = await Signaling.open(client, bob)
    await b.join(recorded["id"])
    pc_b = client_peer()
    video = ColorVideoTrack()
    pc_b.addTrack(video)
    await b.call_server(pc_b)
    await wait_connected(pc_b)

    async def sent_enough() -> bool:
        return video.sent >= 45

    await eventually(sent_enough, timeout=15)
    assert len(await server_peers(client, admin)) == 2
    peers = client.app[peers_key]

    await client.close()  # the app shuts down

    assert peers.peers == {}
    assert peers.by_connection == {}
    await eventually(lambda: ended(pc_a))
    await eventually(lambda: ended(pc_b))
    async with transaction(db) as conn:
        rows = await conn.fetch_all(sa.select(files).where(files.c.owner_id == bob.id))
    assert [(r["mime"], r["status"]) for r in rows] == [("video/webm", "complete")]
    assert (upload_dir / rows[0]["id"].hex[:2] / str(rows[0]["id"])).stat().st_size > 0
    for closing in (pc_a, pc_b, a, b):
        await closing.close()
