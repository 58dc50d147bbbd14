"""The lean WebSocket client of the scaling scenarios (c100k): one small object per
connection, no asyncio transport. Each socket is read by a loop reader with recvmsg() and
SO_TIMESTAMPNS, so every message carries the kernel's receive time (when the subscriber's
socket had it, whatever the generator was doing), and it costs the generator no second
descriptor. Connections come from many loopback source addresses (127.0.0.0/8,
IP_BIND_ADDRESS_NO_PORT), so the ephemeral port range is per address, not for the run.

What the crowd checks: each client's publications arrive in offset order per channel, none
twice, none missed (`missed` counts holes, `duplicates` repeats)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench.wsclient import _TIMESPEC, CLOSE, PING, PONG, SO_TIMESTAMPNS, TEXT, client_frame

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
RECV_SIZE = 65536
PER_ADDRESS = 20_000  # connections per source address (the ephemeral range is 28,232 ports)
_perf_ns = time.perf_counter_ns

# (client, message, kernel receive time in perf_counter_ns terms)
MessageFn = Callable[["Client", dict[str, Any], int], None]


def source_address(index: int) -> str:
    """The loopback address the index-th connection comes from: 127.0.1.1, then 127.0.1.2
    after PER_ADDRESS connections, and so on (127.0.0.0/8 is all loopback on Linux)."""
    block = index // PER_ADDRESS
    return f"127.0.{1 + block // 250}.{1 + block % 250}"


class Client:
    """One WebSocket connection. `cursors` holds the last cursor per channel (to subscribe
    again with `since`), `last` the last offset seen per channel."""

    PATH = "/realtime/ws"
    STATUS = b"HTTP/1.1 101"  # the answer that opens the connection
    __slots__ = (
        "_buffer",
        "_opened",
        "_realtime_shift",
        "cursors",
        "duplicates",
        "index",
        "last",
        "lost",
        "lost_why",
        "missed",
        "on_message",
        "sock",
        "token",
        "user_id",
        "waiters",
    )

    def __init__(self, index: int, user_id: int, token: str, on_message: MessageFn) -> None:
        self.index = index
        self.user_id = user_id
        self.token = token
        self.on_message = on_message
        self.sock: socket.socket | None = None
        self._buffer = b""
        self._opened: asyncio.Future[None] | None = None
        self._realtime_shift = 0
        self.cursors: dict[str, str] = {}
        self.last: dict[str, int] = {}
        self.missed = 0
        self.duplicates = 0
        self.lost = False
        self.lost_why = ""
        # replies awaited by id (subscribe) or by type (connected)
        self.waiters: dict[Any, asyncio.Future[dict[str, Any]]] = {}

    # -- connecting ------------------------------------------------------------------------
    async def connect(self, host: str, port: int, path: str, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        connected: asyncio.Future[dict[str, Any]] | None = None
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.setblocking(False)
            sock.bind((source_address(self.index), 0))
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (host, port))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._buffer = b""
                self.lost = False
                self._opened = loop.create_future()
                connected = self.expect(self._first_message())
                self.sock = sock
                self._realtime_shift = time.time_ns() - _perf_ns()
                loop.add_reader(sock.fileno(), self._readable)
                sock.send(self._request(host, port, path))
                await self._opened
                await connected
        except BaseException:
            self.drop()
            sock.close()
            if connected is not None and connected.done() and not connected.cancelled():
                connected.exception()  # retrieved: the error raised here says it already
            raise

    def _request(self, host: str, port: int, path: str) -> bytes:
        return _upgrade(host, port, path, base64.b64encode(os.urandom(16)), self.token)

    def _first_message(self) -> Any:
        """The waiter key of the message that says the connection is ready."""
        return "connected"

    async def join(self, host: str, port: int, channels: list[str]) -> None:
        """Connect and subscribe to `channels` (from their cursors when coming back)."""
        await self.connect(host, port, self.PATH)
        await asyncio.gather(*(self.subscribe(name, i) for i, name in enumerate(channels, 1)))

    def expect(self, key: Any) -> asyncio.Future[dict[str, Any]]:
        """A future for the reply with this `id` (or the message of this `type`)."""
        future = asyncio.get_running_loop().create_future()
        self.waiters[key] = future
        return future

    async def subscribe(self, channel: str, reply_id: int, timeout: float = 60.0) -> None:
        """Subscribe (from the last cursor, if any) and count what the reply replays."""
        frame: dict[str, Any] = {"type": "subscribe", "channel": channel, "id": reply_id}
        if channel in self.cursors:
            frame["since"] = self.cursors[channel]
        reply = self.expect(reply_id)
        self.send(frame)
        async with asyncio.timeout(timeout):
            answer = await reply
        if answer.get("type") != "subscribed":
            raise RuntimeError(f"subscribe {channel}: {answer}")
        if channel in self.cursors and not answer.get("recovered", False):
            raise RuntimeError(f"subscribe {channel}: not recovered ({answer})")
        for publication in answer.get("publications", ()):
            self.count(publication)
        self.cursors[channel] = answer["cursor"]
        if channel not in self.last:
            self.last[channel] = int(answer["cursor"].rpartition(":")[2])

    # -- sending ---------------------------------------------------------------------------
    def send(self, message: Any) -> None:
        self.send_raw(client_frame(orjson.dumps(message)))

    def send_raw(self, frame: bytes) -> None:
        if self.sock is None:
            raise ConnectionError("not connected")
        sent = self.sock.send(frame)  # small frames: the socket buffer takes them whole
        if sent != len(frame):
            raise ConnectionError(f"short write ({sent} of {len(frame)} bytes)")

    def drop(self, *, reset: bool = False) -> None:
        """Close without a close frame: a FIN, or with `reset` a RST (a vanished client)."""
        sock, self.sock = self.sock, None
        if sock is None:
            return
        asyncio.get_running_loop().remove_reader(sock.fileno())
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    # -- receiving -------------------------------------------------------------------------
    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            data, ancillary, _, _ = sock.recvmsg(RECV_SIZE, _ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._lost(error)
            return
        if not data:
            self._lost(ConnectionError("the server closed the connection"))
            return
        received = _perf_ns()
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                received = seconds * 1_000_000_000 + nanoseconds - self._realtime_shift
        data = self._buffer + data if self._buffer else data
        if self._opened is not None and not self._opened.done():
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = data
                return
            if not data.startswith(self.STATUS):
                self._opened.set_exception(ConnectionError(data[:200].decode(errors="replace")))
                self.drop()
                return
            self._opened.set_result(None)
            data = data[end + 4 :]
        self._buffer = self._frames(data, received)

    def _frames(self, data: bytes, received: int) -> bytes:
        """Handle every whole frame of `data`; return the incomplete rest."""
        pos, end = 0, len(data)
        while end - pos >= 2:
            first, length = data[pos], data[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if end - pos < 4:
                    break
                length, start = struct.unpack_from("!H", data, pos + 2)[0], pos + 4
            elif length == 127:
                if end - pos < 10:
                    break
                length, start = struct.unpack_from("!Q", data, pos + 2)[0], pos + 10
            if end - start < length:
                break
            payload = data[start : start + length]
            pos = start + length
            opcode = first & 0x0F
            if opcode == TEXT:
                self._message(orjson.loads(payload), received)
            elif opcode == PING:
                self.send_raw(client_frame(payload, PONG))
            elif opcode == CLOSE:
                self._lost(ConnectionError(f"closed by the server: {payload[2:]!r}"))
                return b""
        return data[pos:]

    def _message(self, message: dict[str, Any], received: int) -> None:
        kind = message.get("type")
        waiter = self.waiters.pop(message.get("id", kind), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
            return
        if kind == "publication":
            self.count(message)
        self.on_message(self, message, received)

    def count(self, publication: dict[str, Any]) -> None:
        channel, offset = publication["channel"], publication["offset"]
        last = self.last.get(channel)
        if last is not None:
            if offset <= last:
                self.duplicates += 1
                return
            self.missed += offset - last - 1
        self.last[channel] = offset
        self.cursors[channel] = publication["cursor"]

    def _lost(self, error: Exception) -> None:
        self.lost = True
        self.lost_why = f"{type(error).__name__}: {str(error)[:60]}"
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self.waiters.clear()
        if self._opened is not None and not self._opened.done():
            self._opened.set_exception(error)
        self.drop()


def _upgrade(host: str, port: int, path: str, key: bytes, token: str) -> bytes:
    # The answer is checked by its status line only (Sec-WebSocket-Accept: bench/wsclient.py).
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
