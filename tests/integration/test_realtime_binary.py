"""Small binary messages (kind 0x02: uint16 header length | JSON header | bytes): to a
channel's WebSocket and SSE subscribers, echoed without a channel, refused when too large,
and garbage binary frames answered with `bad_binary`."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from typing import Any

import orjson
import pytest
from aiohttp import WSMsgType

from tests.integration.test_realtime_channels import (
    assert_answers_ping,
    assert_quiet,
    open_sse,
    sse_events,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import next_of
from tests.support.accounts import Account


def binary_message(header: dict[str, Any], data: bytes) -> bytes:
    encoded = orjson.dumps(header)
    return struct.pack("!BH", 0x02, len(encoded)) + encoded + data


def parse_binary(frame: bytes) -> tuple[dict[str, Any], bytes]:
    assert frame[0] == 0x02
    (length,) = struct.unpack_from("!H", frame, 1)
    header: dict[str, Any] = orjson.loads(frame[3 : 3 + length])
    return header, frame[3 + length :]


async def next_binary(ws: Any, timeout: float = 5) -> bytes:
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.BINARY:
                data: bytes = message.data
                return data
            assert message.type is WSMsgType.TEXT, message


async def ack_and_binary(ws: Any, timeout: float = 5) -> tuple[dict[str, Any], bytes]:
    """The next `ack` and the next binary frame, whichever comes first."""
    ack: dict[str, Any] | None = None
    frame: bytes | None = None
    async with asyncio.timeout(timeout):
        while ack is None or frame is None:
            message = await ws.receive()
            if message.type is WSMsgType.BINARY:
                frame = frame or message.data
            else:
                assert message.type is WSMsgType.TEXT, message
                decoded = orjson.loads(message.data)
                if decoded.get("type") == "ack":
                    ack = decoded
    return ack, frame


async def open_ws(client: Any, account: Account) -> tuple[Any, dict[str, Any]]:
    ws = await client.ws_connect("/realtime/ws", headers=account.headers)
    hello: dict[str, Any] = await ws.receive_json(timeout=5)
    return ws, hello


async def test_binary_message_reaches_channel_subscribers(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = unique()
    sender, hello = await open_ws(client, alice)
    receiver, _ = await open_ws(client, bob)
    await subscribe(receiver, channel)
    await subscribe(sender, channel)
    payload = bytes(range(256)) * 4
    header = {"channel": channel, "mime": "image/png", "filename": "dot.png", "id": "b1"}
    await sender.send_bytes(binary_message(header, payload))
    # the sender's ack and its copy of the message come in either order (two Redis paths)
    ack, echoed = await ack_and_binary(sender)
    assert ack == {"type": "ack", "id": "b1"}
    for frame in (await next_binary(receiver), echoed):
        got, data = parse_binary(frame)
        assert data == payload
        assert got == {
            "channel": channel,
            "mime": "image/png",
            "filename": "dot.png",
            "size": len(payload),
            "from": {"user_id": alice.id, "client_id": hello["client_id"]},
            "ts": got["ts"],
        }
        assert abs(got["ts"] - time.time() * 1000) < 60_000
    await assert_quiet(receiver)
    await sender.close()
    await receiver.close()


async def test_binary_message_defaults_and_no_history(client: Any, alice: Account) -> None:
    channel = unique()
    ws, _ = await open_ws(client, alice)
    start = await subscribe(ws, channel)
    await ws.send_bytes(binary_message({"channel": channel}, b""))
    header, data = parse_binary(await next_binary(ws))
    assert (header["mime"], header["filename"], header["size"], data) == (
        "application/octet-stream",
        None,
        0,
        b"",
    )
    await ws.send_json({"type": "unsubscribe", "channel": channel})
    await next_of(ws, "unsubscribed")
    again = await subscribe(ws, channel, since=start["cursor"])
    assert (again["recovered"], again["publications"]) == (True, [])  # not kept in history
    await ws.close()


async def test_binary_message_without_channel_is_echoed(client: Any, alice: Account) -> None:
    ws, hello = await open_ws(client, alice)
    await ws.send_bytes(binary_message({"mime": "text/plain", "id": 3}, b"hello"))
    header, data = parse_binary(await next_binary(ws))
    assert data == b"hello"
    assert header["channel"] is None
    assert (header["mime"], header["size"]) == ("text/plain", 5)
    assert header["from"] == {"user_id": alice.id, "client_id": hello["client_id"]}
    assert (await next_of(ws, "ack"))["id"] == 3
    await ws.close()


async def test_sse_subscriber_gets_a_binary_event(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = unique()
    stream, _ = await open_sse(client, bob, [channel])
    ws, _ = await open_ws(client, alice)
    payload = b"\x00\xffbinary\n\r\n"
    await ws.send_bytes(binary_message({"channel": channel, "mime": "a/b", "id": 1}, payload))
    await next_of(ws, "ack")
    [event] = await sse_events(stream, 1)
    assert event["event"] == "binary"
    assert "id" not in event
    body = orjson.loads(event["data"])
    assert body["type"] == "binary"
    assert (body["channel"], body["mime"], body["size"]) == (channel, "a/b", len(payload))
    assert body["from"]["user_id"] == alice.id
    assert base64.b64decode(body["data_base64"]) == payload
    stream.close()
    await ws.close()


async def test_binary_message_over_the_limit(client: Any, alice: Account) -> None:
    channel = unique()
    ws, _ = await open_ws(client, alice)
    await subscribe(ws, channel)
    big = b"x" * (64 * 1024 + 1)
    await ws.send_bytes(binary_message({"channel": channel, "id": "big"}, big))
    error = await next_of(ws, "error")
    assert (error["code"], error["ref"]) == ("too_large", "big")
    await ws.send_bytes(binary_message({"id": "echo"}, b"x" * (64 * 1024)))  # exactly the limit
    header, _ = parse_binary(await next_binary(ws))
    assert header["size"] == 64 * 1024
    await assert_answers_ping(ws)
    await ws.close()


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"channel": "system"}, "forbidden"),
        ({"channel": "user:1"}, "forbidden"),
        ({"channel": "a:b:c"}, "bad_channel"),
        ({"channel": 5}, "bad_channel"),
        ({"channel": ""}, "bad_channel"),
        ({"channel": "nope:x"}, "unknown_namespace"),
    ],
)
async def test_binary_message_to_a_channel_you_may_not_publish_on(
    client: Any, alice: Account, header: dict[str, Any], code: str
) -> None:
    ws, _ = await open_ws(client, alice)
    await ws.send_bytes(binary_message({**header, "id": 9}, b"data"))
    error = await next_of(ws, "error")
    assert (error["code"], error["ref"]) == (code, 9)
    await assert_answers_ping(ws)
    await ws.close()


GARBAGE = [
    b"",
    b"\x07hello",
    b"\xff",
    b"\x02",
    b"\x02\x00",
    b"\x02\x00\x10{}",  # header length past the end
    b"\x02\xff\xff" + b"{}" * 10,  # header length over the maximum
    b"\x02\x00\x03abc",  # header is not JSON
    b"\x02\x00\x03[1]",  # header is not an object
    b"\x02\x00\x02\xff\xfe",  # header is not UTF-8
    b"\x01short",  # a chunk frame shorter than its 25-byte header
]


async def test_garbage_binary_frames(client: Any, alice: Account) -> None:
    ws, _ = await open_ws(client, alice)
    for frame in GARBAGE:
        await ws.send_bytes(frame)
        error = await next_of(ws, "error")
        assert (error["code"], error["ref"]) == ("bad_binary", "binary"), frame
        await assert_answers_ping(ws)
    await ws.close()
