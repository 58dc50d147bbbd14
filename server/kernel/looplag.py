"""How far behind the event loop runs: a callback due every INTERVAL notes how late it ran.
A loop that is late by a second is busy (a connection storm, a long synchronous step), and
anything awaited meanwhile (a health check's answer, say) waits for it too. `recent()` is
the largest lateness seen over the last WINDOW seconds, including the one now under way."""

from __future__ import annotations

import asyncio
from collections import deque

INTERVAL = 0.25
WINDOW = 5.0


class LoopLag:
    def __init__(self) -> None:
        self._seen: deque[tuple[float, float]] = deque(maxlen=round(WINDOW / INTERVAL))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Begin measuring on the running loop (again after stop(); idempotent)."""
        if self._handle is None:
            self._loop = asyncio.get_running_loop()
            self._due = self._loop.time() + INTERVAL
            self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self._seen.append((now, now - self._due))
        self._due = now + INTERVAL
        self._handle = self._loop.call_at(self._due, self._tick)

    def recent(self) -> float:
        """Seconds: the worst lateness of the last WINDOW seconds (0 before any tick)."""
        if self._loop is None:
            return 0.0
        now = self._loop.time()
        overdue = max(0.0, now - self._due) if self._handle is not None else 0.0
        return max([late for at, late in self._seen if now - at <= WINDOW] + [overdue])
