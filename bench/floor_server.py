"""The bare servers of the `ws-floor` scenario: what one idle WebSocket costs in a process
that does nothing else, on uvloop, with the garbage collector's startup objects frozen.

    python -m bench.floor_server aiohttp PORT   aiohttp: WebSocketResponse, no middleware
    python -m bench.floor_server raw PORT       an asyncio Protocol and its transport only

Each greets a client with `{"type":"connected"}` (what bench/crowd.py waits for), then
reads and drops what it is sent. It prints `ready` once it listens."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import subprocess
import sys
from typing import cast

import uvloop
from aiohttp import web

CONNECTED = b'{"type":"connected"}'
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455
_END = b"\r\n\r\n"


async def _aiohttp_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=False)
    await ws.prepare(request)
    await ws.send_str(CONNECTED.decode())
    async for _ in ws:
        pass
    return ws


class RawSocket(asyncio.Protocol):
    """The upgrade answered by hand, then every byte dropped: the floor of a connection
    held by Python at all (the transport, this object)."""

    __slots__ = ("_head", "transport")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._head: bytes | None = b""

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            return
        self._head += data
        if _END not in self._head:
            return
        lines = self._head.split(_END)[0].split(b"\r\n")
        self._head = None
        key = next(
            line.split(b":", 1)[1].strip()
            for line in lines
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 (RFC 6455)
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + _END + bytes([0x81, len(CONNECTED)]) + CONNECTED
        )


def start(kind: str, port: int, cwd: str) -> subprocess.Popen[bytes]:
    """This module as a process serving `kind` on `port` (it prints `ready` on stdout)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench.floor_server", kind, str(port)],
        cwd=cwd,
        stdout=subprocess.PIPE,
    )


async def serve(kind: str, port: int) -> None:
    if kind == "aiohttp":
        app = web.Application()
        app.router.add_get("/realtime/ws", _aiohttp_socket)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    elif kind == "raw":
        await asyncio.get_running_loop().create_server(RawSocket, "127.0.0.1", port, backlog=4096)
    else:
        raise SystemExit(f"unknown kind {kind!r}: aiohttp or raw")
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    gc.freeze()
    uvloop.run(serve(sys.argv[1], int(sys.argv[2])))
