"""A WebSocket after its upgrade (server/hub/handover.py, ws_protocol.py), against a real
server: aiohttp lets go of the socket, frames sent with the upgrade request are not lost,
messages are handled in order, both closing handshakes end with the right code, a client
that never answers a close is dropped, hostile frames close with the code that says why,
and permessage-deflate works both ways."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
import time
from typing import Any

import orjson
from aiohttp import WSMsgType

from server.hub import ws_protocol
from server.hub.hub import hub_key
from server.hub.protocol import Close
from tests.integration.test_realtime_channels import custom_client, subscribe, unique
from tests.support.accounts import Account
from tests.support.waiting import eventually


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked frame, as a client must send it."""
    key = os.urandom(4)
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    length = len(payload)
    if length < 126:
        head = bytes((0x80 | opcode, 0x80 | length))
    else:
        head = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", length)
    return head + key + masked


def upgrade_request(client: Any, account: Account) -> bytes:
    headers = {
        "Host": f"{client.server.host}:{client.server.port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        **account.headers,
    }
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"GET /realtime/ws HTTP/1.1\r\n{lines}\r\n".encode()


class RawClient:
    """A socket speaking WebSocket by hand: it sends what a test says and reads frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, client: Any, first: bytes) -> RawClient:
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        writer.write(first)
        raw = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return raw

    async def frame(self, timeout: float = 5) -> tuple[int, bytes]:
        """The next frame: its opcode and payload (a server's frames are not masked)."""
        async with asyncio.timeout(timeout):
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)

    async def message(self, timeout: float = 5) -> dict[str, Any]:
        opcode, payload = await self.frame(timeout)
        assert opcode == 0x1, (opcode, payload)
        message: dict[str, Any] = orjson.loads(payload)
        return message

    async def closed_by_server(self, timeout: float) -> bool:
        """True when the server closes the TCP connection within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.writer.close()


async def forgotten(hub: Any, client_id: str) -> None:
    """Wait until the hub no longer knows the client (its session ended)."""

    async def gone() -> bool:
        return client_id not in hub.connections

    await eventually(gone)


def ping_message(id_: int, size: int = 0) -> bytes:
    return orjson.dumps({"type": "ping", "id": id_, "data": "x" * size})


async def test_aiohttp_lets_go_of_the_socket_after_the_upgrade(client: Any, alice: Account) -> None:
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    hello = await ws.receive_json(timeout=5)
    connection = client.app[hub_key].connections[hello["client_id"]]
    assert isinstance(connection.transport.get_protocol(), ws_protocol.WebSocketProtocol)
    held_by_aiohttp = [handler.transport for handler in client.server.runner.server.connections]
    assert connection.transport not in held_by_aiohttp
    await ws.send_json({"type": "ping", "id": 1})
    assert (await ws.receive_json(timeout=5))["id"] == 1
    await ws.close()
    assert ws.close_code == 1000


async def test_frames_sent_with_the_upgrade_request_are_handled_in_order(
    client: Any, alice: Account
) -> None:
    """A client that does not wait for the 101: its frames were read by aiohttp before the
    hand-over. 200 KB of them (more than aiohttp buffers before it stops reading)."""
    frames = b"".join(client_frame(ping_message(i, 1000)) for i in range(200))
    raw = await RawClient.open(client, upgrade_request(client, alice) + frames)
    assert (await raw.message())["type"] == "connected"
    ids = [(await raw.message())["id"] for _ in range(200)]
    assert ids == list(range(200))
    raw.close()


async def test_a_flood_pauses_reading_and_loses_nothing(client: Any, alice: Account) -> None:
    """More than INBOX_BYTES at once: the socket is not read while they wait, then all of
    them are answered, in order."""
    raw = await RawClient.open(client, upgrade_request(client, alice))
    assert (await raw.message())["type"] == "connected"
    count = 3 * ws_protocol.INBOX_BYTES // 2000
    raw.writer.write(b"".join(client_frame(ping_message(i, 2000)) for i in range(count)))
    ids = [(await raw.message())["id"] for _ in range(count)]
    assert ids == list(range(count))
    raw.close()


async def test_a_ping_frame_is_answered_with_its_payload(client: Any, alice: Account) -> None:
    raw = await RawClient.open(client, upgrade_request(client, alice))
    assert (await raw.message())["type"] == "connected"
    raw.writer.write(client_frame(b"are you there", opcode=0x9))
    assert await raw.frame() == (0xA, b"are you there")
    raw.close()


async def test_the_clients_close_is_answered_and_the_session_ends(
    client: Any, alice: Account
) -> None:
    raw = await RawClient.open(client, upgrade_request(client, alice))
    hello = await raw.message()
    hub = client.app[hub_key]
    assert hello["client_id"] in hub.connections
    raw.writer.write(client_frame(struct.pack("!H", 1000) + b"bye", opcode=0x8))
    opcode, payload = await raw.frame()
    assert (opcode, struct.unpack("!H", payload[:2])[0]) == (0x8, 1000)
    assert await raw.closed_by_server(timeout=2)
    await forgotten(hub, hello["client_id"])
    raw.close()


async def test_a_client_that_never_answers_the_close_is_dropped(
    client: Any, alice: Account
) -> None:
    raw = await RawClient.open(client, upgrade_request(client, alice))
    hello = await raw.message()
    connection = client.app[hub_key].connections[hello["client_id"]]
    connection.close_soon(4003, "session revoked: test")
    opcode, payload = await raw.frame()
    assert (opcode, struct.unpack("!H", payload[:2])[0]) == (0x8, 4003)
    assert payload[2:] == b"session revoked: test"
    started = time.monotonic()
    assert await raw.closed_by_server(timeout=ws_protocol.CLOSE_TIMEOUT + 2)
    assert time.monotonic() - started >= ws_protocol.CLOSE_TIMEOUT - 0.5
    raw.close()


async def test_a_client_gone_in_the_middle_of_a_message_ends_its_session(
    client: Any, alice: Account
) -> None:
    raw = await RawClient.open(client, upgrade_request(client, alice))
    hello = await raw.message()
    raw.writer.write(client_frame(ping_message(1, 1000))[:300])  # half a frame, then gone
    await raw.writer.drain()
    raw.writer.transport.abort()
    hub = client.app[hub_key]
    await forgotten(hub, hello["client_id"])


async def test_permessage_deflate_both_ways(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, WS_COMPRESSION=True)
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers, compress=15)
    assert ws.compress == 15  # the server agreed
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "connected"
    channel = unique()
    await subscribe(ws, channel)
    text = "compressible " * 200
    await ws.send_json({"type": "publish", "channel": channel, "data": {"text": text}, "id": 2})
    async with asyncio.timeout(5):
        while True:
            message = await ws.receive()
            assert message.type is WSMsgType.TEXT, message
            frame = orjson.loads(message.data)
            if frame["type"] == "publication":
                break
    assert frame["data"] == {"text": text}
    await ws.close()


async def close_code_after(client: Any, account: Account, frames: bytes) -> tuple[int, bytes]:
    """What the server's close frame says after `frames`, then the socket is gone."""
    raw = await RawClient.open(client, upgrade_request(client, account))
    assert (await raw.message())["type"] == "connected"
    raw.writer.write(frames)
    while True:
        opcode, payload = await raw.frame()
        if opcode == 0x8:
            break
    raw.writer.write(client_frame(payload[:2], opcode=0x8))  # the client's close
    assert await raw.closed_by_server(timeout=2)
    raw.close()
    return struct.unpack("!H", payload[:2])[0], payload[2:]


async def test_hostile_frames_close_with_the_code_that_says_why(
    client: Any, alice: Account
) -> None:
    hub = client.app[hub_key]
    before = len(hub.connections)
    cases = {
        "reserved opcode": (client_frame(b"x", opcode=0x3), 1002),
        "continuation without a start": (client_frame(b"x", opcode=0x0), 1002),
        "text that is not UTF-8": (client_frame(b"\xff\xfe\xfd"), 1007),
        "close code that may not be sent": (client_frame(b"\x03\xed", opcode=0x8), 1002),
        "declared length of 2**63-1": (
            bytes((0x82, 0xFF)) + struct.pack("!Q", 2**63 - 1) + os.urandom(4),
            1009,
        ),
    }
    for what, (frames, expected) in cases.items():
        code, _ = await close_code_after(client, alice, frames)
        assert code == expected, what

    # Every session ended; the process goes on serving.
    async def all_ended() -> bool:
        return len(hub.connections) == before

    await eventually(all_ended)
    ws = await client.ws_connect("/realtime/ws", headers=alice.headers)
    assert (await ws.receive_json(timeout=5))["type"] == "connected"
    await ws.close()


async def test_a_message_in_fragments_is_one_message(client: Any, alice: Account) -> None:
    raw = await RawClient.open(client, upgrade_request(client, alice))
    assert (await raw.message())["type"] == "connected"
    whole = ping_message(5, 300)
    first, second, third = whole[:100], whole[100:200], whole[200:]
    start = bytearray(client_frame(first, opcode=0x1))
    start[0] &= 0x7F  # FIN off
    middle = bytearray(client_frame(second, opcode=0x0))
    middle[0] &= 0x7F
    # A ping between the fragments is allowed (control frames may be interleaved).
    raw.writer.write(
        bytes(start)
        + client_frame(b"between", opcode=0x9)
        + bytes(middle)
        + client_frame(third, opcode=0x0)
    )
    assert await raw.frame() == (0xA, b"between")
    reply = await raw.message()
    assert (reply["type"], reply["id"], reply["data"]) == ("pong", 5, "x" * 300)
    raw.close()


async def test_messages_sent_just_before_the_client_goes_are_handled(
    client: Any, alice: Account, bob: Account
) -> None:
    """Five publishes, then the client closes its socket without waiting: all five are
    published (they were read before the socket ended)."""
    channel = unique()
    listener = await client.ws_connect("/realtime/ws", headers=bob.headers)
    assert (await listener.receive_json(timeout=5))["type"] == "connected"
    await subscribe(listener, channel)
    raw = await RawClient.open(client, upgrade_request(client, alice))
    assert (await raw.message())["type"] == "connected"
    subscribe_frame = orjson.dumps({"type": "subscribe", "channel": channel, "id": 0})
    publishes = [
        orjson.dumps({"type": "publish", "channel": channel, "data": {"n": n}, "id": n})
        for n in range(1, 6)
    ]
    raw.writer.write(b"".join(client_frame(frame) for frame in [subscribe_frame, *publishes]))
    raw.close()  # FIN right behind the frames
    got = []
    async with asyncio.timeout(10):
        while len(got) < 5:
            frame = await listener.receive_json()
            if frame["type"] == "publication":
                got.append(frame["data"]["n"])
    assert got == [1, 2, 3, 4, 5]
    await listener.close()


async def test_a_client_that_pings_without_reading_the_pongs_is_a_slow_consumer(
    aiohttp_client: Any, settings: Any, alice: Account
) -> None:
    client = await custom_client(aiohttp_client, settings, SEND_QUEUE_BYTES=65536)
    raw = await RawClient.open(client, upgrade_request(client, alice))
    hello = await raw.message()
    hub = client.app[hub_key]
    connection = hub.connections[hello["client_id"]]
    ping = client_frame(b"p" * 125, opcode=0x9)
    with contextlib.suppress(ConnectionError):
        async with asyncio.timeout(20):
            while connection.close_code is None:
                raw.writer.write(ping * 100)
                await raw.writer.drain()
    assert connection.close_code == Close.SLOW_CONSUMER
    raw.writer.transport.abort()


async def test_head_is_not_a_way_in(client: Any, alice: Account) -> None:
    for path in ("/realtime/ws", "/realtime/events?channels=public:x"):
        response = await client.head(path, headers=alice.headers)
        assert response.status == 405, path
