"""The bare servers of the `ws-floor` benchmark (bench/floor_server.py) are real WebSocket
servers: a standard client (aiohttp, which checks Sec-WebSocket-Accept) opens each and is
greeted, so the memory they show is that of a working connection."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bench import floor_server, system
from bench.floor_server import CONNECTED
from bench.harness import PROJECT_ROOT


@pytest.mark.parametrize("kind", ["raw", "aiohttp"])
async def test_a_standard_client_is_greeted(kind: str) -> None:
    port = system.free_port()
    server = floor_server.start(kind, port, str(PROJECT_ROOT))
    try:
        assert server.stdout is not None
        assert (await asyncio.to_thread(server.stdout.readline)).strip() == b"ready"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                f"http://127.0.0.1:{port}/realtime/ws",
                timeout=aiohttp.ClientWSTimeout(ws_close=0.5),  # raw never answers a close
            ) as ws,
        ):
            assert (await ws.receive_str(timeout=5)).encode() == CONNECTED
    finally:
        server.kill()
        server.wait()
        assert server.stdout is not None
        server.stdout.close()
