"""Reading JSON frames of given types from a test WebSocket without losing the others:
frames skipped while waiting are kept (per socket) for the next reader, because the server
may send e.g. a publication before the ack of the publish that caused it."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from aiohttp import WSMsgType

_skipped: weakref.WeakKeyDictionary[Any, list[dict[str, Any]]] = weakref.WeakKeyDictionary()


async def next_frame(ws: Any, kinds: tuple[str, ...], timeout: float = 5) -> dict[str, Any]:
    backlog = _skipped.setdefault(ws, [])
    for index, frame in enumerate(backlog):
        if frame["type"] in kinds:
            return backlog.pop(index)
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive_json()
            if frame["type"] in kinds:
                return dict(frame)
            backlog.append(frame)


async def close_code(ws: Any, timeout: float = 10) -> int | None:
    """Read (and drop) frames until the server's close; the code its close frame carried.
    (Not `ws.close_code`: the server drops TCP right after its close frame, and an aiohttp
    client that reads it late then reports 1006 because its close reply cannot be sent.)"""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.CLOSE:
                return int(message.data)
            if message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                code: int | None = ws.close_code
                return code
