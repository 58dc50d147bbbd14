"""WEBRTC_MAX_MEDIA_PEERS under pressure: past the limit the server refuses (HTTP 503 /
`too_many_media_peers` error frame) instead of taking the peer and giving every media peer
fewer frames; a data-only peer adding media by renegotiation counts as a new media peer, and
a burst of offers cannot slip several peers past the limit at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.kernel.settings import Settings
from signaling.peers import peers_key
from tests.support.accounts import Account
from tests.support.rtc import accept_answer, client_peer, offer_sdp, wait_open
from tests.support.rtc_media import ColorVideoTrack, FrameSink, Signaling, create_room, rtc_app
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

REFUSAL = {"code": "too_many_media_peers", "message": "this server carries no more media peers"}


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads", WEBRTC_MAX_PEERS=10, WEBRTC_MAX_MEDIA_PEERS=1)


class MediaPeer:
    """A client peer sending a small colour video whose echo is counted."""

    def __init__(self) -> None:
        self.pc = client_peer()
        self.pc.addTrack(ColorVideoTrack())
        self.sinks: list[FrameSink] = []
        self.pc.on("track", lambda track: self.sinks.append(FrameSink(track)))

    async def post_offer(self, client: Any, account: Account) -> tuple[int, dict[str, Any]]:
        response = await client.post(
            "/realtime/webrtc/offer",
            json={"sdp": await offer_sdp(self.pc), "type": "offer"},
            headers=account.headers,
        )
        return response.status, dict(await response.json())

    async def frames_arrive(self, after: int = 0) -> None:
        """At least 3 echoed frames more than `after` arrive."""

        async def counted() -> bool:
            return bool(self.sinks) and self.sinks[0].frames >= after + 3

        await eventually(counted, timeout=15)

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.stop()
        await self.pc.close()


async def echo_round_trip(channel: Any, text: str) -> None:
    echoed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_message(message: str) -> None:
        if not echoed.done():
            echoed.set_result(message)

    channel.on("message", on_message)
    channel.send(text)
    assert await asyncio.wait_for(echoed, 10) == text


async def test_a_data_peer_adding_media_past_the_limit_is_refused_and_keeps_its_channel(
    client: Any, alice: Account, bob: Account
) -> None:
    carried = MediaPeer()  # the one media peer this server carries
    data = client_peer()
    signaling = await Signaling.open(client, bob)
    try:
        await refused_renegotiation(client, alice, bob, carried, data, signaling)
    finally:
        for closing in (carried, data, signaling):
            await closing.close()


async def refused_renegotiation(
    client: Any, alice: Account, bob: Account, carried: MediaPeer, data: Any, signaling: Signaling
) -> None:
    status, answer = await carried.post_offer(client, alice)
    assert status == 201, answer
    await accept_answer(carried.pc, answer["sdp"])
    await carried.frames_arrive()

    channel = data.createDataChannel("echo")
    await signaling.join((await create_room(client, bob))["id"])
    await signaling.call_server(data)  # data only: welcome
    await wait_open(channel)

    data.addTrack(ColorVideoTrack())  # now bob asks for media on the same peer
    refused = await signaling.request(
        {"type": "offer", "to": "server", "sdp": await offer_sdp(data), "id": 7}, "answer"
    )
    assert refused == {"type": "error", **REFUSAL, "ref": 7}, refused
    manager = client.app[peers_key]
    bob_peer = manager.of_connection(signaling.peer_id)
    assert bob_peer is not None and not bob_peer.media
    assert manager.media_peers == 1
    await echo_round_trip(channel, "still here")  # bob's peer itself is untouched
    await signaling.ping()

    await carried.frames_arrive(after=carried.sinks[0].frames)  # still echoed


async def test_a_burst_of_media_offers_gets_one_peer_and_clear_503s(
    client: Any, alice: Account
) -> None:
    peers = [MediaPeer() for _ in range(3)]
    try:
        replies = await asyncio.gather(*(peer.post_offer(client, alice) for peer in peers))
        statuses = sorted(status for status, _ in replies)
        assert statuses == [201, 503, 503], replies
        for status, body in replies:
            if status == 503:
                assert {**body["error"], "request_id": None} == {**REFUSAL, "request_id": None}
        accepted, answer = next((p, r[1]) for p, r in zip(peers, replies, strict=True)
                                if r[0] == 201)  # fmt: skip
        await accept_answer(accepted.pc, answer["sdp"])
        await accepted.frames_arrive()
        assert client.app[peers_key].media_peers == 1
    finally:
        for peer in peers:
            await peer.close()

    async def none_left() -> bool:
        return not client.app[peers_key].peers

    await eventually(none_left)
