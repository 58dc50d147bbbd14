"""The frames of live sessions are the ones GET /asyncapi.json describes: every frame of a
WebSocket session (pub/sub, presence, direct messages, binary frames, file uploads, WebRTC
signaling) and every event of an event stream validates against the payload schema the
document gives its message, and every message the document promises is seen at least once
(but those only an outage produces). (The document itself: test_asyncapi_document.py.)"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from server.hub.binary import chunk_frame, message_frame
from server.kernel.settings import Settings
from tests.support.accounts import Account
from tests.support.asyncapi import OUTAGE_ONLY, Document, EventStream, Recorder, fetch
from tests.support.rtc import client_peer, offer_sdp
from tests.support.rtc_media import create_room, rtc_app


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    return rtc_app(settings, tmp_path / "uploads")  # server peers on loopback, uploads in tmp


async def test_live_websocket_frames_match_the_document(
    client: Any, alice: Account, bob: Account
) -> None:
    document = Document(await fetch(client))
    a, b = await Recorder.open(client, alice), await Recorder.open(client, bob)
    channel = f"public:asyncapi-{uuid.uuid4().hex[:8]}"
    await a.send({"type": "ping", "id": 1, "data": {"x": [1, "y"]}}, "pong")
    first = await a.send({"type": "subscribe", "channel": channel, "id": "s"}, "subscribed")
    await b.send({"type": "subscribe", "channel": channel}, "subscribed")
    await a.next("join")
    await b.send({"type": "publish", "channel": channel, "data": {"n": 1}, "id": 2}, "ack")
    await a.next("publication")
    await a.send({"type": "presence", "channel": channel, "id": 3}, "presence")
    await a.send({"type": "message", "text": "echo", "id": 4}, "message")
    await a.send({"type": "subscribe", "channel": f"user:{alice.id}"}, "subscribed")
    await b.send({"type": "message", "text": "hi", "to": alice.id}, "ack")
    await a.next("publication")
    await b.send({"type": "unsubscribe", "channel": channel, "id": 5}, "unsubscribed")
    await a.next("leave")
    await a.send({"type": "unsubscribe", "channel": channel}, "unsubscribed")
    replay = {"type": "subscribe", "channel": channel, "since": first["cursor"]}
    assert (await a.send(replay, "subscribed"))["publications"]  # a subscribed with a replay
    response = await client.post(
        "/realtime/send",
        json={"client_id": a.hello["client_id"], "data": [1]},
        headers=alice.headers,
    )
    assert response.status == 202, await response.text()
    await a.next("message")
    await a.ws.send_json({"type": "no-such-type", "id": 6})
    with pytest.raises(AssertionError, match="unknown_type"):
        await a.next("never")
    await _binary_and_files(a, channel)
    await _signaling(client, a, b, alice)
    for recorder in (a, b):
        for frame in recorder.frames:
            document.check("websocket", frame["type"], frame, prefix="server.")
        await recorder.ws.close()
    header = document.doc["components"]["messages"]["server.binary.message"]["x-binary-header"]
    for raw in a.binaries:
        assert raw[:1] == b"\x02"
        size = int.from_bytes(raw[1:3], "big")
        assert document.errors(header["$ref"], orjson.loads(raw[3 : 3 + size])) == []
    promised = {f"{k}@websocket" for k in document.messages("websocket") if k[:7] == "server."}
    promised -= {"server.binary.message@websocket"}  # checked just above
    assert promised - document.seen - OUTAGE_ONLY == set()


async def _binary_and_files(a: Recorder, channel: str) -> None:
    await a.ws.send_bytes(message_frame({"mime": "text/plain", "filename": "a.txt"}, b"hey"))
    await a.send({"type": "ping"}, "pong")  # after the binary echo
    assert a.binaries
    data = b"x" * 1000
    begin = {"type": "file.begin", "name": "a.bin", "size": len(data), "channel": channel}
    ready = await a.send({**begin, "id": 7}, "file.ready")
    await a.ws.send_bytes(chunk_frame(uuid.UUID(ready["upload_id"]), 0, data))
    await a.next("file.ack")
    await a.send({"type": "file.end", "upload_id": ready["upload_id"], "id": 8}, "file.done")
    other = await a.send({**begin, "channel": None}, "file.ready")
    await a.send({"type": "file.abort", "upload_id": other["upload_id"]}, "file.aborted")


async def _signaling(client: Any, a: Recorder, b: Recorder, alice: Account) -> None:
    room = (await create_room(client, alice))["id"]
    await a.send({"type": "join", "room": room, "id": 9}, "joined")
    await b.send({"type": "join", "room": room}, "joined")
    await a.next("peer-joined")
    sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    to_a = {"to": a.hello["client_id"]}
    await b.send({"type": "offer", "sdp": sdp, **to_a})
    await a.next("offer")
    await b.send({"type": "answer", "sdp": sdp, **to_a})
    await a.next("answer")
    await b.send({"type": "candidate", "candidate": None, **to_a})
    await a.next("candidate")
    pc = client_peer()
    try:
        pc.createDataChannel("echo")
        server_offer = {"type": "offer", "to": "server", "sdp": await offer_sdp(pc), "id": 10}
        assert (await a.send(server_offer, "answer"))["from"] == "server"
    finally:
        await pc.close()
    await b.send({"type": "leave"}, "left")
    await a.next("peer-left")


async def _removed_from_a_private_channel(client: Any, alice: Account, bob: Account) -> EventStream:
    """bob's stream on a private channel, until alice removes him: `unsubscribed`, `close`."""
    response = await client.post(
        "/realtime/private-channels", json={"name": uuid.uuid4().hex}, headers=alice.headers
    )
    channel = (await response.json())["channel"]
    members = f"/realtime/private-channels/{channel.partition(':')[2]}/members/{bob.id}"
    assert (await client.put(members, headers=alice.headers)).status == 200
    stream = await EventStream.open(client, bob, f"channels={channel}")
    await stream.next("subscribed")
    assert (await client.delete(members, headers=alice.headers)).status == 204
    await stream.next("unsubscribed")
    await stream.next("close")
    stream.response.close()
    return stream


async def test_live_event_stream_events_match_the_document(
    client: Any, alice: Account, bob: Account
) -> None:
    document = Document(await fetch(client))
    channel = f"public:asyncapi-{uuid.uuid4().hex[:8]}"
    stream = await EventStream.open(client, alice, f"channels={channel}")
    hello = await stream.next("connected")
    await stream.next("subscribed")
    b = await Recorder.open(client, bob)
    await b.send({"type": "subscribe", "channel": channel}, "subscribed")
    await stream.next("join")
    await b.send({"type": "publish", "channel": channel, "data": "hello"}, "ack")
    await stream.next("publication")
    await b.ws.send_bytes(message_frame({"channel": channel, "mime": "text/plain", "id": 1}, b"hi"))
    await b.next("ack")
    await stream.next("binary")
    response = await client.post(
        "/realtime/send",
        json={"client_id": hello["client_id"], "data": {"x": 1}},
        headers=alice.headers,
    )
    assert response.status == 202, await response.text()
    await stream.next("message")
    await b.send({"type": "unsubscribe", "channel": channel}, "unsubscribed")
    await stream.next("leave")
    stream.response.close()
    await b.ws.close()
    lost = await EventStream.open(client, alice, f"channels={channel}&since=gone:5")
    await lost.next("recovery-failed")
    await lost.next("close")
    lost.response.close()
    removed = await _removed_from_a_private_channel(client, alice, bob)
    for name, _, data in stream.events + lost.events + removed.events:
        document.check("events", name, data)
    promised = {f"{key}@events" for key in document.messages("events")}
    assert promised - document.seen - OUTAGE_ONLY == set()
