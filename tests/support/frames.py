"""Reading JSON frames of given types from a test WebSocket without losing the others:
frames skipped while waiting are kept (per socket) for the next reader, because the server
may send e.g. a publication before the ack of the publish that caused it."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

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
