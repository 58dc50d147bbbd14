"""Bad input on /realtime/ws: every malformed or refused message gets an `error` frame and
the connection keeps answering; limits (subscriptions, data size, publish rate) likewise;
only an oversized frame (1009) and a frame flood (1008) close the socket."""

from __future__ import annotations

import asyncio
from typing import Any

from server.hub.hub import hub_key
from tests.integration.test_realtime_channels import (
    assert_answers_ping,
    custom_client,
    error_for,
    publications,
    publish,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.frames import close_code
from tests.support.waiting import eventually

BAD_MESSAGES: list[tuple[Any, str]] = [
    ("not json", "bad_json"),
    ("{", "bad_json"),
    ("", "bad_json"),
    ("[1, 2]", "bad_message"),
    ('"ping"', "bad_message"),
    ("{}", "bad_message"),
    ({"type": 5}, "bad_message"),
    ({"type": None}, "bad_message"),
    ({"type": "nope"}, "unknown_type"),
    ({"type": "x" * 5000}, "unknown_type"),
    ({"type": "subscribe"}, "invalid"),
    ({"type": "subscribe", "channel": 5}, "invalid"),
    ({"type": "subscribe", "channel": None}, "invalid"),
    ({"type": "subscribe", "channel": "public:x", "since": 5}, "invalid"),
    ({"type": "subscribe", "channel": "public:x", "since": "a" * 65}, "invalid"),
    ({"type": "subscribe", "channel": "public:x", "extra": 1}, "invalid"),
    ({"type": "unsubscribe", "channel": ["public:x"]}, "invalid"),
    ({"type": "publish", "channel": "public:x"}, "invalid"),
    ({"type": "publish", "data": 1}, "invalid"),
    ({"type": "ping", "id": [1]}, "invalid"),
    ({"type": "ping", "id": {"a": 1}}, "invalid"),
    ({"type": "ping", "id": 1.5}, "invalid"),
    ({"type": "message"}, "invalid"),
    ({"type": "message", "text": 5}, "invalid"),
    ({"type": "message", "text": "x" * 16385}, "invalid"),
    ({"type": "message", "text": "x", "to": "bob"}, "invalid"),
    ({"type": "message", "text": "x", "to": 0}, "invalid"),
    ({"type": "message", "text": "x", "to": 2**63}, "invalid"),
    ({"type": "presence"}, "invalid"),
    ({"type": "presence", "channel": {}}, "invalid"),
]


async def test_bad_messages_get_errors_and_the_connection_stays(
    client: Any, alice: Account
) -> None:
    """All of them, one after the other, on one connection that answers pings throughout."""
    ws = await connect(client, alice)
    for message, code in BAD_MESSAGES:
        error = await error_for(ws, message)
        assert error["code"] == code, (message, error)
        assert isinstance(error["message"], str) and len(error["message"]) < 500, message
        if code == "invalid":
            details = error["details"]
            assert details and all("loc" in d and "message" in d for d in details), message
        await assert_answers_ping(ws)
    await ws.close()


async def test_error_ref_is_the_id_or_the_type(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    assert (await error_for(ws, {"type": "subscribe", "id": 77}))["ref"] == 77
    assert (await error_for(ws, {"type": "subscribe", "id": "s"}))["ref"] == "s"
    assert (await error_for(ws, {"type": "subscribe"}))["ref"] == "subscribe"
    assert (await error_for(ws, {"type": "nope", "id": 1}))["ref"] == 1
    assert (await error_for(ws, "nonsense"))["ref"] is None
    await ws.close()


HOSTILE_CHANNELS = [
    "",
    "public:" + "a" * 200,
    "p" * 162,
    "../",
    "public:../../etc/passwd",
    "public:a/b",
    "public:é",
    "публичный:x",
    "public:\u202eevil",
    "public:a b",
    " public:x",
    "public:x ",
    "public:x\t",
    "public:\x00",
    "a:b:c",
    "public:a:b",
    "PUBLIC:x",
    "public:",
    ":x",
    "public:<script>",
    "public:*",
    "user:abc",
    "user:",
    "user",
]


async def test_hostile_channel_names_are_refused(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    for channel in HOSTILE_CHANNELS:
        for message in (
            {"type": "subscribe", "channel": channel},
            {"type": "publish", "channel": channel, "data": 1},
            {"type": "presence", "channel": channel},
        ):
            assert (await error_for(ws, message))["code"] == "bad_channel", message
        await assert_answers_ping(ws)
    await ws.close()


async def test_channel_name_with_a_trailing_newline_is_refused(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    await ws.send_json({"type": "subscribe", "channel": "public:lobby\n"})
    frame = await ws.receive_json(timeout=5)
    await ws.close()
    assert (frame["type"], frame.get("code")) == ("error", "bad_channel")


async def test_subscribing_twice(client: Any, alice: Account, bob: Account) -> None:
    channel = unique()
    ws, writer = await connect(client, alice), await connect(client, bob)
    await subscribe(ws, channel)
    error = await error_for(ws, {"type": "subscribe", "channel": channel, "id": 2})
    assert (error["code"], error["ref"]) == ("already_subscribed", 2)
    await publish(writer, channel, "once")
    assert [p["data"] for p in await publications(ws, 1)] == ["once"]
    await publish(writer, channel, "twice")
    assert [p["data"] for p in await publications(ws, 1)] == ["twice"]  # not "once" again
    await ws.close()
    await writer.close()


async def test_subscription_limit(aiohttp_client: Any, settings: Any, alice: Account) -> None:
    client = await custom_client(aiohttp_client, settings, MAX_SUBSCRIPTIONS=3)
    ws = await connect(client, alice)
    channels = [unique() for _ in range(4)]
    for channel in channels[:3]:
        await subscribe(ws, channel)
    error = await error_for(ws, {"type": "subscribe", "channel": channels[3]})
    assert error["code"] == "too_many_subscriptions"
    await ws.send_json({"type": "unsubscribe", "channel": channels[0]})
    await next_of(ws, "unsubscribed")
    await subscribe(ws, channels[3])
    await assert_answers_ping(ws)
    await ws.close()


async def test_publication_data_over_the_limit(client: Any, alice: Account) -> None:
    channel = unique()
    ws = await connect(client, alice)
    await subscribe(ws, channel)
    big = ["abcdefgh"] * 8000  # about 88 KB encoded; BINARY_MESSAGE_MAX is 64 KiB
    error = await error_for(ws, {"type": "publish", "channel": channel, "data": big, "id": 1})
    assert (error["code"], error["ref"]) == ("too_large", 1)
    await publish(ws, channel, "small")
    assert [p["data"] for p in await publications(ws, 1)] == ["small"]
    await ws.close()


async def test_publication_data_limit_is_exact(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, BINARY_MESSAGE_MAX=100)
    ws = await connect(client, alice)
    channel = unique()
    await publish(ws, channel, "x" * 98)  # 100 bytes as JSON
    error = await error_for(ws, {"type": "publish", "channel": channel, "data": "x" * 99})
    assert error["code"] == "too_large"
    await ws.close()


async def test_text_frame_over_max_message_size_closes_with_1009(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, WS_MAX_MESSAGE_SIZE=1024)
    ws = await connect(client, alice)
    await ws.send_json({"type": "ping", "data": "x" * 900, "id": 1})
    assert (await next_of(ws, "pong"))["id"] == 1
    await ws.send_json({"type": "ping", "data": "x" * 2000})
    assert await close_code(ws) == 1009


async def test_publish_flood_is_rate_limited_and_the_connection_stays(
    aiohttp_client: Any, settings: Any, alice: Account, bob: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, PUBLISH_RATE=0.2, PUBLISH_BURST=3)
    ws = await connect(client, alice)
    channel = unique()
    for n in range(10):
        await ws.send_json({"type": "publish", "channel": channel, "data": n, "id": n})
    answers: dict[int, dict[str, Any]] = {}
    async with asyncio.timeout(5):
        while len(answers) < 10:
            frame = await ws.receive_json()
            if frame["type"] in ("ack", "error"):
                answers[frame.get("id", frame.get("ref"))] = frame
    assert [answers[n]["type"] for n in range(3)] == ["ack"] * 3
    refused = [answers[n] for n in range(3, 10)]
    assert all(a["type"] == "error" and a["code"] == "rate_limited" for a in refused)
    # direct messages share the budget
    error = await error_for(ws, {"type": "message", "text": "hi", "to": bob.id, "id": "m"})
    assert (error["code"], error["ref"]) == ("rate_limited", "m")
    await assert_answers_ping(ws)
    assert not ws.closed
    await ws.close()


async def test_frame_flood_closes_with_1008(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, FRAME_RATE=5)
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    hello = await ws.receive_json(timeout=5)
    for n in range(40):
        await ws.send_json({"type": "ping", "id": n})
    assert await close_code(ws) == 1008
    hub = client.app[hub_key]

    async def forgotten() -> bool:
        return hello["client_id"] not in hub.connections

    await eventually(forgotten, timeout=5)
