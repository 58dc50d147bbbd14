"""A minimal client-side WebSocket (RFC 6455) and Server-Sent Events reader for the load
generator: aiohttp's client costs too much CPU per message to drive the server from one core.

`WebSocket` is an asyncio Protocol: the HTTP upgrade is written and checked by hand, client
frames are masked with the all-zero key (valid per RFC 6455 5.3, and the payload needs no
XOR), and an incremental parser reads the server's unmasked frames (text, binary, close,
ping answered with pong, continuation frames reassembled). Messages go either to a
callback (`on_message(ws, opcode, payload)`, called synchronously from `data_received`: the
hot path of a scenario; `on_frame(ws, data, start, end)` even skips copying the payload out
of the bytes read) or, without one, to a queue read with `recv()` (setup steps).

`EventStream` is a streaming HTTP/1.1 GET (chunked or not) that splits the body into SSE
events and calls `on_event(stream, event, data)` for each.

`recv_ns` on both is `time.perf_counter_ns()` when the bytes being parsed were read: every
message of one read shares it, which is when the data reached this process. After
`stamp_arrivals(ws)` a WebSocket is read with recvmsg() instead, and `recv_ns` is when the
kernel received the data (SO_TIMESTAMPNS), while `read_ns` stays the time this process read
it: one process reading 1,000 sockets reads the last one several milliseconds after it
arrived, and the arrival time separates the server's delay from the generator's own.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, cast

import orjson

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HEAD = 65536
_ZERO_MASK = b"\x00\x00\x00\x00"
_perf_ns = time.perf_counter_ns
SO_TIMESTAMPNS = 35  # Linux (asm-generic: x86-64, arm64); SCM_TIMESTAMPNS has the same value
_TIMESPEC = struct.Struct("@qq")
RECV_SIZE = 262144

MessageFn = Callable[["WebSocket", int, bytes], None]
FrameFn = Callable[["WebSocket", bytes, int, int], None]
EventFn = Callable[["EventStream", bytes, bytes], None]


class HandshakeError(ConnectionError):
    """The server refused the upgrade or the stream (status and start of the body)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:300]}")
        self.status = status


def client_frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """One whole client frame, masked with the zero key (so the payload is unchanged)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + _ZERO_MASK + payload


def client_frame_header(length: int, opcode: int = BINARY) -> bytes:
    """The header (zero mask included) of a frame whose payload is written separately."""
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, 0x80 | length) + _ZERO_MASK
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length) + _ZERO_MASK
    return struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length) + _ZERO_MASK


def _request(method: str, host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP response: {status_line[:100]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class _HttpProtocol(asyncio.Protocol):
    """Shared: the response head, write flow control, connection loss."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.recv_ns = 0
        self.read_ns = 0
        self._stamped: socket.socket | None = None  # see stamp_arrivals()
        self.user: Any = None  # free for the scenario (e.g. the subscriber's counters)
        self._head = b""
        self._open: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._unstamp()
        if not self._open.done():
            self._open.set_exception(exc or ConnectionError("connection closed during handshake"))
        if not self.lost.done():
            self.lost.set_result(None)
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        await self._writable.wait()
        if self.lost.done():
            raise ConnectionError("connection lost")

    def _read_head(self, data: bytes) -> bytes | None:
        """Collect the response head; None until it is complete, then the rest of `data`."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD:
                self._fail(ConnectionError("response head too large"))
            return None
        head, rest = self._head[:end], self._head[end + 4 :]
        self._head = b""
        return self._on_head(head, rest)

    def _on_head(self, head: bytes, rest: bytes) -> bytes | None:
        raise NotImplementedError

    def _fail(self, error: Exception) -> None:
        if not self._open.done():
            self._open.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def abort(self) -> None:
        self._unstamp()
        if self.transport is not None:
            self.transport.abort()

    def _unstamp(self) -> None:
        stamped, self._stamped = self._stamped, None
        if stamped is not None:
            asyncio.get_running_loop().remove_reader(stamped.fileno())
            stamped.close()


class WebSocket(_HttpProtocol):
    def __init__(self, key: bytes, on_message: MessageFn | None = None) -> None:
        super().__init__()
        self.on_message = on_message
        self.on_frame: FrameFn | None = None  # takes precedence over on_message
        self.close_code: int | None = None
        self.close_reason = ""
        self._close_sent = False
        self._key = key
        self._upgraded = False
        self._pending: list[bytes] = []  # an incomplete frame's bytes
        self._pending_len = 0
        self._need = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._queue: collections.deque[tuple[int, bytes]] = collections.deque()
        self._queue_waiter: asyncio.Future[None] | None = None

    # -- receiving ---------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.recv_ns = self.read_ns = _perf_ns()
        self._received(data)

    def _received(self, data: bytes) -> None:
        if not self._upgraded:
            rest = self._read_head(data)
            if not rest:
                return
            data = rest
        if self._pending:
            self._pending.append(data)
            self._pending_len += len(data)
            if self._pending_len < self._need:
                return
            data = b"".join(self._pending)
            self._pending.clear()
        self._parse(data)

    def _on_head(self, head: bytes, rest: bytes) -> bytes | None:
        status, headers = _parse_head(head)
        if status != 101:
            self._fail(HandshakeError(status, rest.decode("utf-8", "replace")))
            return None
        expected = base64.b64encode(hashlib.sha1(self._key + GUID).digest()).decode()  # noqa: S324
        if headers.get("sec-websocket-accept") != expected:
            self._fail(ConnectionError("wrong Sec-WebSocket-Accept"))
            return None
        self._upgraded = True
        self._open.set_result(headers)
        return rest

    def _parse(self, data: bytes) -> None:
        pos = 0
        end_of_data = len(data)
        on_message = self.on_message
        on_frame = self.on_frame
        while end_of_data - pos >= 2:
            first = data[pos]
            length = data[pos + 1]
            if length & 0x80:
                self._protocol_error("the server sent a masked frame")
                return
            if length < 126:
                start = pos + 2
            elif length == 126:
                if end_of_data - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if end_of_data - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > end_of_data:
                self._pending = [data[pos:]]
                self._pending_len = end_of_data - pos
                self._need = end - pos
                return
            pos = end
            if first == 0x81 or first == 0x82:  # whole text or binary frame: the hot path
                if on_frame is not None:  # no copy of the payload
                    on_frame(self, data, start, end)
                elif on_message is not None:
                    on_message(self, first & 0x0F, data[start:end])
                else:
                    self._enqueue(first & 0x0F, data[start:end])
            else:
                self._other_frame(first, data[start:end])
        if pos < end_of_data:
            self._pending = [data[pos:]]
            self._pending_len = end_of_data - pos
            self._need = self._pending_len + 1

    def _other_frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        fin = first & 0x80
        if opcode == PING:
            self._write_frame(payload, PONG)
        elif opcode == PONG:
            pass
        elif opcode == CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self.close_reason = payload[2:].decode("utf-8", "replace")
            if self.transport is not None and not self.transport.is_closing():
                if not self._close_sent:  # echo the server's close, then end the TCP side
                    self._close_sent = True
                    self._write_frame(payload[:2], CLOSE)
                self.transport.close()
        elif opcode in (TEXT, BINARY):  # first fragment
            self._fragment_opcode = opcode
            self._fragments = [payload]
        elif opcode == CONTINUATION and self._fragments:
            self._fragments.append(payload)
            if fin:
                whole = b"".join(self._fragments)
                self._fragments = []
                if self.on_message is not None:
                    self.on_message(self, self._fragment_opcode, whole)
                else:
                    self._enqueue(self._fragment_opcode, whole)
        else:
            self._protocol_error(f"unexpected frame 0x{first:02x}")

    def _protocol_error(self, why: str) -> None:
        self.close_code = 1002
        self.close_reason = why
        self.abort()

    def _enqueue(self, opcode: int, payload: bytes) -> None:
        self._queue.append((opcode, payload))
        waiter = self._queue_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        waiter = self._queue_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self, timeout: float = 10.0) -> tuple[int, bytes]:
        """The next queued message (only while no `on_message` callback is set)."""
        async with asyncio.timeout(timeout):
            while not self._queue:
                if self.lost.done():
                    raise ConnectionError(f"closed ({self.close_code} {self.close_reason})")
                self._queue_waiter = asyncio.get_running_loop().create_future()
                await self._queue_waiter
            return self._queue.popleft()

    async def recv_json(self, kind: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """The next text message (of `type` kind, skipping others such as join events);
        an `error` message raises."""
        async with asyncio.timeout(timeout):
            while True:
                opcode, payload = await self.recv(timeout)
                if opcode != TEXT:
                    continue
                message: dict[str, Any] = orjson.loads(payload)
                if message.get("type") == "error" and kind != "error":
                    raise RuntimeError(f"server error: {message}")
                if kind is None or message.get("type") == kind:
                    return message

    # -- sending -----------------------------------------------------------------------------
    def _write_frame(self, payload: bytes, opcode: int) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(payload, opcode))

    def send_text(self, payload: bytes) -> None:
        self._write_frame(payload, TEXT)

    def send_json(self, message: Any) -> None:
        self._write_frame(orjson.dumps(message), TEXT)

    def send_raw(self, frame: bytes) -> None:
        """A frame built once by client_frame() (e.g. the same ping for every connection)."""
        assert self.transport is not None
        self.transport.write(frame)

    def send_binary_parts(self, header: bytes, body: bytes | memoryview) -> None:
        """One binary frame whose payload is header + body, without joining them."""
        assert self.transport is not None
        length = len(header) + len(body)
        self.transport.writelines([client_frame_header(length, BINARY), header, body])

    def begin_close(self, code: int = 1000) -> None:
        """Send a close frame (once); the server answers with its own and ends the TCP
        connection (`lost` resolves)."""
        if self._close_sent or self.transport is None or self.transport.is_closing():
            return
        self._close_sent = True
        self._write_frame(struct.pack("!H", code), CLOSE)

    async def close(self, code: int = 1000, timeout: float = 2.0) -> None:
        """Send a close frame and wait for the server's (or abort after `timeout`)."""
        if self.transport is None or self.transport.is_closing():
            return
        self.begin_close(code)
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), timeout)
        except TimeoutError:
            self.abort()


def stamp_arrivals(ws: WebSocket) -> None:
    """From now on, read `ws` with recvmsg() on a duplicate of its socket (the transport's
    reading is paused) with SO_TIMESTAMPNS on: `recv_ns` becomes the kernel's receive time of
    the last segment read, in perf_counter_ns() terms; `read_ns` the time of the read. Writes
    still go through the transport; the duplicate is closed with the connection."""
    assert ws.transport is not None
    assert ws._upgraded
    assert ws._stamped is None
    loop = asyncio.get_running_loop()
    original = ws.transport.get_extra_info("socket")
    stamped = socket.socket(fileno=os.dup(original.fileno()))
    try:
        stamped.setblocking(False)
        stamped.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        stamped.close()
        raise
    ws.transport.pause_reading()
    ws._stamped = stamped
    ancillary = socket.CMSG_SPACE(_TIMESPEC.size)
    realtime_shift = time.time_ns() - _perf_ns()  # CLOCK_REALTIME -> perf_counter_ns()

    def readable() -> None:
        try:
            data, cmsgs, _, _ = stamped.recvmsg(RECV_SIZE, ancillary)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            ws.abort()  # the transport reports the loss (connection_lost)
            return
        if not data:  # the server closed its side
            ws.abort()
            return
        ws.read_ns = _perf_ns()
        ws.recv_ns = ws.read_ns
        for level, kind, value in cmsgs:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                ws.recv_ns = seconds * 1_000_000_000 + nanoseconds - realtime_shift
        ws._received(data)

    loop.add_reader(stamped.fileno(), readable)


async def connect(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    on_message: MessageFn | None = None,
    timeout: float = 10.0,
) -> WebSocket:
    """Open a WebSocket; returns after the 101 answer was checked."""
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16))
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key.decode(),
        "Sec-WebSocket-Version": "13",
        **(headers or {}),
    }
    async with asyncio.timeout(timeout):
        _, ws = await loop.create_connection(lambda: WebSocket(key, on_message), host, port)
        assert ws.transport is not None
        ws.transport.write(_request("GET", host, port, path, upgrade))
        try:
            await ws._open
        except BaseException:
            ws.abort()
            raise
    return ws


class EventStream(_HttpProtocol):
    """A streaming GET whose body is split into SSE events (`event` and `data` fields)."""

    def __init__(self, on_event: EventFn) -> None:
        super().__init__()
        self.on_event = on_event
        self.status = 0
        self._started = False
        self._chunked = False
        self._raw = b""  # undecoded body bytes (chunked transfer encoding)
        self._text = b""  # decoded body bytes not yet ending an event

    def data_received(self, data: bytes) -> None:
        self.recv_ns = self.read_ns = _perf_ns()
        if not self._started:
            rest = self._read_head(data)
            if rest is None:
                return
            data = rest
        if not self._chunked:
            self._events(data)
            return
        raw = self._raw + data if self._raw else data
        pos = 0
        size_end = raw.find(b"\r\n")
        pieces = []
        while size_end >= 0:
            size = int(raw[pos:size_end].split(b";", 1)[0], 16)
            end = size_end + 2 + size
            if end + 2 > len(raw):
                break
            if size == 0:
                self.abort()
                break
            pieces.append(raw[size_end + 2 : end])
            pos = end + 2
            size_end = raw.find(b"\r\n", pos)
        self._raw = raw[pos:]
        if pieces:
            self._events(pieces[0] if len(pieces) == 1 else b"".join(pieces))

    def _events(self, data: bytes) -> None:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        text = self._text + data if self._text else data
        blocks = text.split(b"\n\n")
        self._text = blocks.pop()
        on_event = self.on_event
        for block in blocks:
            event = b"message"
            data_lines = []
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    data_lines.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    event = line[6:].strip()
            if data_lines:
                on_event(
                    self, event, data_lines[0] if len(data_lines) == 1 else b"\n".join(data_lines)
                )

    def _on_head(self, head: bytes, rest: bytes) -> bytes | None:
        status, headers = _parse_head(head)
        self.status = status
        if status != 200:
            self._fail(HandshakeError(status, rest.decode("utf-8", "replace")))
            return None
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._started = True
        self._open.set_result(headers)
        return rest

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_events(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str] | None,
    on_event: EventFn,
    *,
    timeout: float = 10.0,
) -> EventStream:
    """GET `path` with Accept: text/event-stream; returns once the 200 head was read."""
    loop = asyncio.get_running_loop()
    request_headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    request_headers.update(headers or {})
    async with asyncio.timeout(timeout):
        _, stream = await loop.create_connection(lambda: EventStream(on_event), host, port)
        assert stream.transport is not None
        stream.transport.write(_request("GET", host, port, path, request_headers))
        try:
            await stream._open
        except BaseException:
            stream.abort()
            raise
    return stream
