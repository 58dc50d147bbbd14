"""The Python SDK's WSClient against the real server: text, channels, binary, errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from realtime_client import BinaryMessage, RealtimeError, WSClient
from realtime_client.errors import ConnectionClosed

from tests.support.accounts import Account

Incoming = dict[str, Any] | BinaryMessage


def ws_url(client: Any) -> str:
    return str(client.make_url("/realtime/ws")).replace("http://", "ws://", 1)


async def collect(
    ws: WSClient, count: int, match: Callable[[Incoming], bool], timeout: float = 10
) -> list[Incoming]:
    """The next `count` incoming items that `match` (others are skipped)."""
    found: list[Incoming] = []
    async with asyncio.timeout(timeout), contextlib.aclosing(ws.messages()) as stream:
        async for item in stream:
            if match(item):
                found.append(item)
                if len(found) == count:
                    break
    return found


def publication_on(channel: str) -> Callable[[Incoming], bool]:
    return lambda m: isinstance(m, dict) and m["type"] == "publication" and m["channel"] == channel


async def test_send_text_is_echoed(client: Any, alice: Account) -> None:
    async with WSClient(ws_url(client), token=alice.access_token) as ws:
        assert ws.user_id == alice.id
        assert ws.client_id
        echo = await ws.send_text("Привет!")
        assert echo["type"] == "message"
        assert echo["text"] == "Привет!"
        assert echo["from"] == {"user_id": alice.id, "client_id": ws.client_id}
        pong = await ws.ping({"x": 1})
        assert pong["type"] == "pong"
        assert pong["data"] == {"x": 1}


async def test_direct_message_reaches_the_users_channel(
    client: Any, alice: Account, bob: Account
) -> None:
    async with (
        WSClient(ws_url(client), token=alice.access_token) as a,
        WSClient(ws_url(client), token=bob.access_token) as b,
    ):
        await b.subscribe(f"user:{bob.id}")
        ack = await a.send_text("hi bob", to=bob.id)
        assert ack["type"] == "ack"
        [direct] = await collect(b, 1, publication_on(f"user:{bob.id}"))
        assert isinstance(direct, dict)
        assert direct["data"] == {"kind": "direct", "text": "hi bob"}
        assert direct["cursor"] == ack["cursor"]


async def test_subscribe_publish_round_trip(client: Any, alice: Account, bob: Account) -> None:
    async with (
        WSClient(ws_url(client), token=alice.access_token) as a,
        WSClient(ws_url(client), token=bob.access_token) as b,
    ):
        subscribed = await b.subscribe("public:sdk-round")
        assert subscribed["type"] == "subscribed"
        assert subscribed["recovered"] is True
        assert subscribed["publications"] == []
        await a.subscribe("public:sdk-round")
        ack = await a.publish("public:sdk-round", {"n": 1, "text": "héllo"})
        assert ack["type"] == "ack"
        for ws in (a, b):
            [publication] = await collect(ws, 1, publication_on("public:sdk-round"))
            assert isinstance(publication, dict)
            assert publication["data"] == {"n": 1, "text": "héllo"}
            assert publication["cursor"] == ack["cursor"]
            assert publication["from"]["user_id"] == alice.id
        assert b.channels["public:sdk-round"] == ack["cursor"]
        presence = await a.presence("public:sdk-round")
        assert {m["user_id"] for m in presence["members"]} == {alice.id, bob.id}
        await b.unsubscribe("public:sdk-round")
        assert "public:sdk-round" not in b.channels


async def test_subscribe_since_replays_through_messages(client: Any, alice: Account) -> None:
    async with WSClient(ws_url(client), token=alice.access_token) as ws:
        first = await ws.subscribe("public:sdk-since")
        await ws.unsubscribe("public:sdk-since")
        for n in range(3):
            await ws.publish("public:sdk-since", n)
        again = await ws.subscribe("public:sdk-since", since=first["cursor"])
        assert again["recovered"] is True
        assert [p["data"] for p in again["publications"]] == [0, 1, 2]
        replayed = await collect(ws, 3, publication_on("public:sdk-since"))
        assert [p["data"] for p in replayed if isinstance(p, dict)] == [0, 1, 2]


async def test_send_binary_reaches_another_client(
    client: Any, alice: Account, bob: Account
) -> None:
    payload = bytes(range(256)) * 40
    async with (
        WSClient(ws_url(client), token=alice.access_token) as a,
        WSClient(ws_url(client), token=bob.access_token) as b,
    ):
        await b.subscribe("public:sdk-bin")
        message = BinaryMessage.from_bytes(
            payload, "image/png", "dot.png", channel="public:sdk-bin"
        )
        ack = await a.send_binary(message)
        assert ack["type"] == "ack"
        [received] = await collect(b, 1, lambda m: isinstance(m, BinaryMessage))
        assert isinstance(received, BinaryMessage)
        assert received.data == payload
        assert (received.mime, received.filename, received.channel) == (
            "image/png",
            "dot.png",
            "public:sdk-bin",
        )
        assert received.sender == {"user_id": alice.id, "client_id": a.client_id}
        assert received.header["size"] == len(payload)

        await a.send_binary(BinaryMessage.from_bytes(b"echo me", "text/plain"))
        [echo] = await collect(a, 1, lambda m: isinstance(m, BinaryMessage))
        assert isinstance(echo, BinaryMessage)
        assert (echo.data, echo.channel) == (b"echo me", None)


def test_binary_message_frames_round_trip() -> None:
    message = BinaryMessage.from_bytes(b"\x00\x01", "application/x-test", "a.bin", "public:x")
    parsed = BinaryMessage.from_frame(message.to_frame(request_id=5))
    assert (parsed.data, parsed.mime, parsed.filename, parsed.channel) == (
        b"\x00\x01",
        "application/x-test",
        "a.bin",
        "public:x",
    )
    assert parsed.header["id"] == 5


async def test_errors_raise_realtime_error(client: Any, alice: Account, bob: Account) -> None:
    async with WSClient(ws_url(client), token=alice.access_token) as ws:
        with pytest.raises(RealtimeError) as forbidden:
            await ws.subscribe("system")
        assert forbidden.value.code == "forbidden"
        assert isinstance(forbidden.value.ref, int)
        with pytest.raises(RealtimeError) as other_user:
            await ws.subscribe(f"user:{bob.id}")
        assert other_user.value.code == "forbidden"
        with pytest.raises(RealtimeError) as bad:
            await ws.publish("not a channel!", 1)
        assert bad.value.code == "bad_channel"
        with pytest.raises(RealtimeError) as too_big:
            await ws.send_binary(BinaryMessage.from_bytes(b"x" * 70_000, "a/b", None, "public:x"))
        assert too_big.value.code == "too_large"
        assert (await ws.ping())["type"] == "pong"  # the connection stays usable
        assert ws.channels == {}


async def test_webrtc_signal_is_sent_as_a_frame(client: Any, alice: Account) -> None:
    """The frame goes out as `{"type": "offer", "to", "sdp"}`; the server's answer arrives
    through messages(): here an error naming the type (`unknown_type` before signaling
    is served, `not_in_room` once it is, as this client joined no room)."""
    async with WSClient(ws_url(client), token=alice.access_token) as ws:
        await ws.send_webrtc_signal("offer", "peer_123", sdp="v=0...")
        [answer] = await collect(ws, 1, lambda m: isinstance(m, dict) and m["type"] == "error")
        assert isinstance(answer, dict)
        assert answer["ref"] == "offer"
        assert answer["code"] in ("unknown_type", "not_in_room")


async def test_credentials_api_key_ticket_and_refusal(client: Any, alice: Account) -> None:
    url = ws_url(client)
    with pytest.raises(RealtimeError) as refused:
        async with WSClient(url, token="not-a-token"):
            pass
    assert refused.value.code == "unauthorized"

    issued: list[str] = []

    async def ticket() -> str:
        response = await client.post("/auth/ws-ticket", headers=alice.headers)
        assert response.status in (200, 201), await response.text()
        issued.append((await response.json())["ticket"])
        return issued[-1]

    async with WSClient(url, ticket=ticket, reconnect_delay=0.01) as ws:
        assert ws.user_id == alice.id
        assert ws._ws is not None
        await ws._ws.close()
        assert (await ws.ping())["type"] == "pong"  # reconnected with a fresh ticket
        assert ws.reconnects == 1
        assert len(issued) == 2

    response = await client.post(
        "/auth/api-keys", headers=alice.headers, json={"name": "sdk", "scopes": ["realtime"]}
    )
    assert response.status == 201, await response.text()
    key = (await response.json())["key"]
    async with WSClient(url, api_key=key) as ws:
        assert ws.user_id == alice.id


async def test_no_reconnect_ends_messages(client: Any, alice: Account) -> None:
    async with WSClient(ws_url(client), token=alice.access_token, reconnect=False) as ws:
        assert ws._ws is not None
        await ws._ws.close()
        with pytest.raises(ConnectionClosed):
            await collect(ws, 1, lambda m: True)
        with pytest.raises(ConnectionClosed):
            await ws.ping()
