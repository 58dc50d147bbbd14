"""A WebSocket text frame nested deeper than MAX_JSON_DEPTH gets an `error` frame `too_deep`
(its id as `ref` when it has one) and the connection keeps answering; a frame just within
the limit works as before."""

from __future__ import annotations

import json
import struct
from typing import Any

from server.kernel.jsonutil import MAX_JSON_DEPTH
from tests.integration.test_http_json_depth import nested
from tests.integration.test_realtime_channels import assert_answers_ping, error_for, unique
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account


async def test_a_deeply_nested_frame_is_answered_too_deep_and_the_connection_stays(
    client: Any, alice: Account
) -> None:
    ws = await connect(client, alice)
    channel = f"public:{unique()}"
    for frame in (
        {"type": "publish", "channel": channel, "id": "deep", "data": nested(300)},
        {"type": "ping", "id": "deep", "data": nested(MAX_JSON_DEPTH)},
    ):
        error = await error_for(ws, json.dumps(frame))  # orjson stops at 255 levels
        assert error["code"] == "too_deep", error
        assert error["ref"] == "deep"
        assert str(MAX_JSON_DEPTH) in error["message"]
        await assert_answers_ping(ws)
    # Past orjson's own limit (1024 levels): the same answer, not `bad_json`.
    error = await error_for(ws, '{"type": "ping", "data": ' + "[" * 3000 + "]" * 3000 + "}")
    assert error["code"] == "too_deep", error
    await assert_answers_ping(ws)
    await ws.close()


async def test_a_frame_just_within_the_limit_is_handled(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    data = nested(MAX_JSON_DEPTH - 1)  # the frame's own object is the first level
    await ws.send_json({"type": "ping", "id": "within", "data": data})
    pong = await next_of(ws, "pong")
    assert pong == {"type": "pong", "id": "within", "data": data}
    await ws.close()


async def test_a_binary_message_header_nested_too_deep_is_answered_too_deep(
    client: Any, alice: Account
) -> None:
    ws = await connect(client, alice)
    for header_json in (
        b'{"id": ' + b"[" * 300 + b"]" * 300 + b"}",  # orjson reads it, then refuses to write it
        b'{"id": ' + b"[" * 1500 + b"]" * 1500 + b"}",  # past orjson's own parsing limit
    ):
        await ws.send_bytes(struct.pack("!BH", 0x02, len(header_json)) + header_json + b"x")
        error = await next_of(ws, "error")
        assert (error["code"], error["ref"]) == ("too_deep", "binary"), error
        await assert_answers_ping(ws)
    await ws.close()
