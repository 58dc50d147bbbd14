"""A client whose network path changes comes back on a new peer connection and resumes its
bridged data channels from their cursors (aiortc has no ICE restart): what was published
meanwhile arrives first, then live publications, each once and in order. Real server
in-process, real aiortc client peers, the Python SDK's BridgeCursors and offer_to_server.

The path is dropped by making the client's UDP sockets deaf and mute under aiortc (nothing
sent, nothing read: Wi-Fi gone), so the server is told nothing, not even the DTLS
close_notify of the client's later close: its old peer lives on until ICE consent expires."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection
from realtime_client.webrtc import BridgeCursors, offer_to_server, offer_url

from server.kernel.settings import Settings
from tests.integration.test_private_channels import create_channel
from tests.support.accounts import Account
from tests.support.rtc import accept_answer, client_peer, offer_sdp, wait_open
from tests.support.rtc_media import rtc_app, server_peers
from tests.support.waiting import eventually

PUBLISHED = 150  # at 50/s (PUBLISH_RATE) about 3 s, within HISTORY_SIZE (200)


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads")


class Frames:
    """What one bridged data channel delivered, through BridgeCursors.observe."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def add(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        self.changed.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["type"] == kind]

    async def wait(self, predicate: Any, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


class Listener:
    """Every raw message of a data channel, and its close."""

    def __init__(self, channel: Any) -> None:
        self.messages: list[Any] = []
        self.closed = asyncio.Event()
        channel.on("message", self.messages.append)
        channel.on("close", self.closed.set)


async def call_server(client: Any, account: Account, pc: RTCPeerConnection) -> None:
    """A new server peer for `pc` (POST /realtime/webrtc/offer, through the SDK)."""
    url = offer_url(str(client.make_url("/realtime/ws")).replace("http", "ws", 1))
    answer = await offer_to_server(client.session, url, account.headers, await offer_sdp(pc), 10)
    await accept_answer(pc, answer["sdp"])


class DeadPath:
    """A UDP transport whose network is gone: sends vanish (reading is paused as well)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def sendto(self, data: bytes, addr: Any = None) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def drop_path(pc: RTCPeerConnection) -> None:
    """The client's network path is gone: its ICE sockets neither send nor receive."""
    # PRIVATE-API aiortc 1.16 / aioice 0.13: the data channels' ICE connection and its
    # sockets (no public way to make a peer connection lose its network).
    assert pc.sctp is not None
    connection = pc.sctp.transport.transport._connection
    for protocol in connection._protocols:
        transport: Any = protocol.transport  # a selector datagram transport: it can pause
        transport.pause_reading()
        protocol.transport = DeadPath(transport)  # type: ignore[assignment]


async def bridged(
    client: Any, account: Account, cursors: BridgeCursors, name: str, frames: Frames
) -> tuple[RTCPeerConnection, dict[str, Any]]:
    """A new peer connection bridging `name` from `cursors`' cursor (if any), once its
    `subscribed` message came: the peer and that message."""
    pc = client_peer()
    channel = cursors.open(pc, name, frames.add)
    await call_server(client, account, pc)
    await wait_open(channel)
    await frames.wait(lambda: frames.of("subscribed"))
    [subscribed] = frames.of("subscribed")
    return pc, subscribed


async def publisher(ws: Any, name: str, count: int, acked: list[int]) -> None:
    """Publish 0..count-1 on `name`, one after another (each acknowledged)."""
    for n in range(count):
        await ws.send_json({"type": "publish", "channel": name, "data": {"n": n}, "id": n})
        while (frame := await ws.receive_json(timeout=10))["type"] != "ack":
            assert frame["type"] != "error", frame
        acked.append(n)
        await asyncio.sleep(0.02)


async def publishing_socket(client: Any, account: Account) -> Any:
    ws = await client.ws_connect("/realtime/ws", headers=account.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    return ws


async def test_a_dropped_path_resumes_on_a_new_peer_without_losing_a_publication(
    client: Any, alice: Account, bob: Account, admin: Account
) -> None:
    name = f"public:resume-{uuid.uuid4().hex[:8]}"
    cursors = BridgeCursors()
    first, second = Frames(), Frames()
    old, hello = await bridged(client, alice, cursors, name, first)
    assert hello["recovered"] is True and hello["replayed"] == 0, hello
    assert cursors.cursors[name] == hello["cursor"]

    ws = await publishing_socket(client, bob)
    acked: list[int] = []
    publishing = asyncio.create_task(publisher(ws, name, PUBLISHED, acked))
    await first.wait(lambda: len(first.of("publication")) >= 30)
    try:
        drop_path(old)  # mid-transfer
        dropped_at = len(acked)

        # the publisher carries on while the client is away
        async def published_meanwhile() -> bool:
            return len(acked) >= dropped_at + 40

        await eventually(published_meanwhile, interval=0.02)

        new = client_peer()
        resumed = cursors.open(new, name, second.add)
        last_seen = first.of("publication")[-1]["cursor"]
        assert orjson.loads(resumed.protocol) == {"since": last_seen}
        raw = Listener(resumed)  # what the server sent, before the SDK drops any duplicate
        await call_server(client, alice, new)
        await wait_open(resumed)
        await publishing
        await second.wait(
            lambda: (
                bool(second.of("publication"))
                and second.of("publication")[-1]["data"]["n"] == PUBLISHED - 1
            )
        )
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)

    [back] = second.of("subscribed")
    assert second.frames[0] is back  # the resume answer comes first
    assert back["recovered"] is True and back["replayed"] >= 40, back
    before = [frame["data"]["n"] for frame in first.of("publication")]
    after = [frame["data"]["n"] for frame in second.of("publication")]
    assert before + after == list(range(PUBLISHED))  # each once, in order
    sent = [orjson.loads(message) for message in raw.messages]
    assert [f["data"]["n"] for f in sent if f["type"] == "publication"] == after
    # the server was told nothing: the old peer is still there beside the new one
    peers = [p for p in await server_peers(client, admin) if p["user_id"] == alice.id]
    assert len(peers) == 2, peers
    await ws.close()
    await new.close()
    await old.close()


async def test_a_cursor_beyond_the_history_is_told_recovered_false(
    client: Any, alice: Account, bob: Account
) -> None:
    name = f"public:resume-{uuid.uuid4().hex[:8]}"
    ws = await publishing_socket(client, bob)
    acked: list[int] = []
    await publisher(ws, name, 3, acked)
    cursors = BridgeCursors()
    cursors.cursors[name] = "another-epoch:1"  # e.g. the history expired meanwhile
    frames = Frames()
    pc, subscribed = await bridged(client, alice, cursors, name, frames)
    assert subscribed["recovered"] is False and subscribed["replayed"] == 0, subscribed
    assert subscribed["cursor"].endswith(":3")  # the channel's position now
    assert cursors.cursors[name] == subscribed["cursor"]
    # live publications follow from there
    await ws.send_json({"type": "publish", "channel": name, "data": {"n": "live"}})
    await frames.wait(lambda: frames.of("publication"))
    assert [f["data"] for f in frames.of("publication")] == [{"n": "live"}]
    assert frames.of("publication")[0]["offset"] == 4
    await ws.close()
    await pc.close()


@pytest.mark.parametrize(
    ("protocol", "code"),
    [
        ("not json", "invalid"),
        ("[]", "invalid"),
        ('"a:1"', "invalid"),
        ('{"since": 5}', "bad_cursor"),
        ('{"since": "no-offset"}', "bad_cursor"),
        ('{"since": "e:-1"}', "bad_cursor"),
        ('{"since": "' + "e" * 40 + ':1"}', "bad_cursor"),
        ('{"since": "e:1", "token": "x"}', "invalid"),
        ('{"since": {"$gt": ""}}', "bad_cursor"),
        ("[" * 200 + "]" * 200, "too_large"),
        ('{"since": "' + "x" * 60000 + '"}', "too_large"),
    ],
)
async def test_a_bad_resume_protocol_gets_an_error_then_the_channel_closes(
    client: Any, alice: Account, protocol: str, code: str
) -> None:
    name = f"public:resume-{uuid.uuid4().hex[:8]}"
    pc = client_peer()
    bad = pc.createDataChannel(name, protocol=protocol)
    echo = pc.createDataChannel("echo")
    listener = Listener(bad)
    await call_server(client, alice, pc)
    await asyncio.wait_for(listener.closed.wait(), 10)
    [message] = listener.messages
    error = orjson.loads(message)
    assert error["type"] == "error" and error["code"] == code, error
    assert error["message"]
    # the peer and the process are fine: the echo channel works, and a good bridge opens
    await wait_open(echo)
    echoed = Listener(echo)
    echo.send("still here")

    async def echoed_back() -> bool:
        return echoed.messages == ["still here"]

    await eventually(echoed_back, interval=0.02)
    good, _ = await bridged(client, alice, BridgeCursors(), name, Frames())
    await good.close()
    await pc.close()


async def test_a_non_member_cannot_resume_into_a_private_channel(
    client: Any, alice: Account, bob: Account
) -> None:
    private = await create_channel(client, bob)
    ws = await publishing_socket(client, bob)
    await ws.send_json({"type": "subscribe", "channel": private, "id": "s"})
    subscribed = await ws.receive_json(timeout=5)
    assert subscribed["type"] == "subscribed", subscribed
    acked: list[int] = []
    await publisher(ws, private, 2, acked)
    epoch = subscribed["cursor"].partition(":")[0]
    cursors = BridgeCursors()
    cursors.cursors[private] = f"{epoch}:0"  # a real cursor, from before both publications
    pc = client_peer()
    channel = pc.createDataChannel(private, protocol=cursors.protocol(private))
    listener = Listener(channel)
    await call_server(client, alice, pc)
    await asyncio.wait_for(listener.closed.wait(), 10)
    [message] = listener.messages  # the refusal, and not one publication
    error = orjson.loads(message)
    assert error["type"] == "error" and error["code"] == "forbidden", error
    await ws.close()
    await pc.close()


def test_bridge_cursors_keep_the_last_cursor_and_drop_what_was_given_already() -> None:
    """Pure logic of the SDK's BridgeCursors (the tests above drive it over real peers)."""
    name = "public:lobby"

    def publication(epoch: str, offset: int) -> str:
        frame = {"type": "publication", "cursor": f"{epoch}:{offset}", "data": offset}
        return orjson.dumps(frame).decode()

    cursors = BridgeCursors()
    assert cursors.protocol(name) == "{}"
    replaying = {"type": "subscribed", "cursor": "e:9", "recovered": True, "replayed": 2}
    assert cursors.observe(name, orjson.dumps(replaying).decode()) is not None
    assert name not in cursors.cursors  # the replayed publications move it, one by one
    assert cursors.observe(name, publication("e", 8)) is not None
    assert cursors.observe(name, publication("e", 8)) is None  # given already
    assert cursors.observe(name, publication("e", 9)) is not None
    assert orjson.loads(cursors.protocol(name)) == {"since": "e:9"}
    assert cursors.observe(name, orjson.dumps({"type": "gap", "cursor": "f:3"}).decode())
    assert cursors.observe(name, publication("f", 3)) is None
    assert cursors.observe(name, publication("f", 4)) is not None
    for garbage in ("not json", "[1]", b"\x00\x01", "null"):
        assert cursors.observe(name, garbage) is None
    assert cursors.cursors == {name: "f:4"}
