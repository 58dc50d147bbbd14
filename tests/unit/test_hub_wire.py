"""The bus wire format (server/hub/wire.py): what the publish script is given, and every
form it writes read back as a Delivery carrying its cursor."""

from __future__ import annotations

import re

import orjson

from server.hub import binary, wire
from server.hub.position import Position, parse_cursor


def _scripted_frame(head: bytes, tail: bytes, epoch: str, offset: int) -> bytes:
    """What PUBLISH_SCRIPT builds around the offset (the same concatenation as its Lua)."""
    cursor = f"{epoch}:{offset}".encode()
    return (
        head
        + str(offset).encode()
        + b',"epoch":"'
        + epoch.encode()
        + b'","cursor":"'
        + cursor
        + b'"'
        + tail
    )


def test_the_script_completes_the_parts_into_the_publication_frame() -> None:
    head, tail = wire.publication_parts(
        "public:a", b'{"x":[1,2]}', {"user_id": 7, "client_id": "c"}
    )
    frame = orjson.loads(_scripted_frame(head, tail, "ab12", 42))
    assert frame["type"] == "publication"
    assert (frame["channel"], frame["offset"], frame["epoch"]) == ("public:a", 42, "ab12")
    assert frame["cursor"] == "ab12:42"
    assert frame["from"] == {"user_id": 7, "client_id": "c"}
    assert frame["data"] == {"x": [1, 2]}
    assert isinstance(frame["ts"], int)


def test_the_script_is_given_its_arguments_in_order() -> None:
    args = wire.publish_args(200, 600_000, "ep", (b"h", b"t"), "p:bus:public:a", 123)
    assert args == [200, 600_000, "ep", b"h", b"t", "p:bus:public:a", 123, "PUBLISH"]
    used = {int(index) for index in re.findall(r"ARGV\[(\d+)\]", wire.PUBLISH_SCRIPT)}
    assert used == set(range(1, len(args) + 1))


def test_a_publication_on_the_bus_carries_its_cursor() -> None:
    head, tail = wire.publication_parts("public:a", b"1", None)
    frame = _scripted_frame(head, tail, "ab12", 9)
    delivery = wire.parse(b"p\nab12:9\n" + frame)
    assert delivery.payload == frame
    assert (delivery.event, delivery.cursor) == ("publication", "ab12:9")
    assert (delivery.epoch, delivery.offset) == ("ab12", 9)
    assert not delivery.binary
    assert delivery.cursor == orjson.loads(delivery.payload)["cursor"]


def test_join_leave_and_binary_messages_have_no_cursor() -> None:
    event = {"type": "join", "channel": "public:a", "info": {"client_id": "c"}}
    joined = wire.parse(wire.event_message(event))
    assert (joined.event, joined.cursor, orjson.loads(joined.payload)) == ("join", None, event)
    frame = binary.message_frame({"channel": "public:a"}, b"\x00\x01")
    sent = wire.parse(wire.binary_message(frame))
    assert (sent.event, sent.cursor, sent.binary, sent.payload) == ("binary", None, True, frame)


def test_a_stream_entry_is_a_publication_with_its_cursor_and_time() -> None:
    delivery, published_at = wire.parse_entry("ab12", b"0-17", {b"f": b"{}", b"t": b"1700"})
    assert (delivery.cursor, delivery.epoch, delivery.offset) == ("ab12:17", "ab12", 17)
    assert (delivery.payload, delivery.event, published_at) == (b"{}", "publication", 1700)


def test_direct_messages_are_json_envelopes() -> None:
    message = wire.direct_message("c1", {"type": "message"}, sender_id=None, admin=True)
    assert orjson.loads(message) == {
        "client_id": "c1",
        "sender_id": None,
        "admin": True,
        "frame": {"type": "message"},
    }


def test_cursors() -> None:
    assert parse_cursor("ab12:0") == Position("ab12", 0)
    assert Position("ab12", 5).cursor == "ab12:5"
    for bad in ("", ":1", "ab12", "ab12:", "ab12:-1", "ab12:x", "e" * 33 + ":1", "e:" + "9" * 19):
        assert parse_cursor(bad) is None, bad
