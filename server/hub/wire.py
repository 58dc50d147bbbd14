"""The bus wire format: how a channel's messages travel through Redis, written and read here.

PUBLISH_SCRIPT (the Lua half) runs atomically: it numbers a publication (INCR), builds its
final JSON frame around the offset, epoch and cursor, appends it to the channel's stream,
refreshes the keys' lifetime and PUBLISHes it on the channel's bus, so every node sees a
channel's publications in offset order. The Python half makes its arguments and reads back
both forms it writes:

    stream entry   id 0-<offset>, fields f=<frame>, t=<unix ms>          parse_entry()
    bus message    p\\n<cursor>\\n<frame>    a publication (in history)    parse()
                   e\\n\\n<JSON event>       join/leave (not in history)
                   b\\n\\n<binary frame>     a binary message (not in history)

Each is read into a Delivery that carries its cursor, so nobody searches frames for one.
Channel `c`'s bus is `{prefix}:bus:{c}`: the braces are the hash tag its history keys carry
too, so on a Redis Cluster the script's keys and its SPUBLISH stay on one shard (ARGV[8] is
PUBLISH on one Redis, SPUBLISH on a cluster: storage/redis.py).
A direct message for one connection, wherever it is, is plain JSON on `{prefix}:direct`:
{client_id, sender_id, admin, frame} (direct_message(); registry.py delivers it).
"""

from __future__ import annotations

from typing import Any

import orjson

from server.hub.delivery import Delivery
from server.hub.protocol import now_ms

# KEYS: offset counter, epoch, stream (history.py). ARGV: see publish_args().
PUBLISH_SCRIPT = """
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[2], epoch)
end
local offset = redis.call('INCR', KEYS[1])
local cursor = epoch .. ':' .. offset
local frame = ARGV[4] .. offset .. ',"epoch":"' .. epoch .. '","cursor":"' .. cursor .. '"'
  .. ARGV[5]
if tonumber(ARGV[1]) > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '0-' .. offset, 'f', frame, 't', ARGV[7])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call(ARGV[8], ARGV[6], 'p\\n' .. cursor .. '\\n' .. frame)
return {offset, epoch}
"""

_PUBLICATION, _BINARY = b"p", b"b"


def bus_prefix(redis_prefix: str) -> str:
    """Channel `c` is fanned out on the pub/sub channel `<bus_prefix><c>}` (bus_channel)."""
    return f"{redis_prefix}:bus:{{"


def bus_channel(prefix: str, channel: str) -> str:
    """The pub/sub channel of `channel`, given bus_prefix(): hash-tagged like its history."""
    return f"{prefix}{channel}}}"


def channel_of(prefix: str, bus: str) -> str | None:
    """The channel a bus channel carries, or None when it is not one (bus_channel's inverse)."""
    if bus.startswith(prefix) and bus.endswith("}"):
        return bus[len(prefix) : -1]
    return None


def publication_parts(
    channel: str, data_json: bytes, sender: dict[str, Any] | None
) -> tuple[bytes, bytes]:
    """The publication frame before and after the offset, epoch and cursor the script
    fills in."""
    head = b'{"type":"publication","channel":' + orjson.dumps(channel) + b',"offset":'
    tail = (
        b',"from":'
        + orjson.dumps(sender)
        + b',"ts":'
        + str(now_ms()).encode()
        + b',"data":'
        + data_json
        + b"}"
    )
    return head, tail


def publish_args(
    size: int,
    ttl_ms: int,
    epoch: str,
    parts: tuple[bytes, bytes],
    bus: str,
    at_ms: int,
    command: str = "PUBLISH",
) -> list[Any]:
    """PUBLISH_SCRIPT's ARGV: history size, lifetime, the epoch of a new history, the frame's
    two parts, the bus channel, the time of the stream entry, PUBLISH or SPUBLISH."""
    return [size, ttl_ms, epoch, parts[0], parts[1], bus, at_ms, command]


def event_message(event: dict[str, Any]) -> bytes:
    return b"e\n\n" + orjson.dumps(event)


def binary_message(frame: bytes) -> bytes:
    return b"b\n\n" + frame


def direct_message(
    client_id: str, frame: dict[str, Any], sender_id: int | None, admin: bool
) -> bytes:
    return orjson.dumps(
        {"client_id": client_id, "sender_id": sender_id, "admin": admin, "frame": frame}
    )


def parse(message: bytes) -> Delivery:
    """A bus message as the delivery its subscribers get."""
    kind = message[:1]
    first = message.index(b"\n")
    second = message.index(b"\n", first + 1)
    frame = message[second + 1 :]
    if kind == _PUBLICATION:
        cursor = message[first + 1 : second].decode()
        epoch, _, offset = cursor.partition(":")
        return Delivery(frame, event="publication", epoch=epoch, offset=int(offset), cursor=cursor)
    if kind == _BINARY:
        return Delivery(frame, event="binary", binary=True)
    return Delivery(frame, event=orjson.loads(frame)["type"])  # join or leave


def parse_entry(
    epoch: str, entry_id: bytes | str, fields: dict[bytes, bytes]
) -> tuple[Delivery, int]:
    """A stream entry as a publication's delivery, and when it was published (unix ms)."""
    offset = int(text(entry_id).partition("-")[2])
    cursor = f"{epoch}:{offset}"
    delivery = Delivery(
        fields[b"f"], event="publication", epoch=epoch, offset=offset, cursor=cursor
    )
    return delivery, int(fields[b"t"])


def text(value: bytes | str) -> str:
    """A string Redis returned (redis-py gives bytes)."""
    return value.decode() if isinstance(value, bytes) else value
