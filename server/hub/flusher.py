"""Write coalescing: every connection that got messages in this event-loop turn is flushed
once at its end, so messages that arrived together leave in one write per connection.

When a flush carries a fan-out to at least BUSY_FLUSH subscribers and follows the previous
flush within RAPID_FLUSHES seconds, it waits FLUSH_DELAY (the most it adds to latency) so
that more messages share each write. Replies (pong, ack) and occasional publications never
wait.
"""

from __future__ import annotations

import asyncio

from server.hub.connection import Connection

FLUSH_DELAY = 0.004
RAPID_FLUSHES = 0.015
BUSY_FLUSH = 64


class Flusher:
    __slots__ = ("_deferred", "_dirty", "_large_fanout", "_last_flush", "_scheduled")

    def __init__(self) -> None:
        self._dirty: list[Connection] = []
        self._scheduled = False
        self._large_fanout = False  # a large channel fan-out waits in this flush
        self._deferred = False
        self._last_flush = 0.0

    def mark_dirty(self, connection: Connection) -> None:
        self._dirty.append(connection)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def large_fanout(self) -> None:
        """A channel message went to at least BUSY_FLUSH connections in this turn (said by
        fanout.py): this flush may wait a moment (see above)."""
        self._large_fanout = True

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        if (
            self._large_fanout
            and not self._deferred
            and loop.time() - self._last_flush < RAPID_FLUSHES
        ):
            # Large fan-outs, one after another: wait a moment so that publications arriving
            # meanwhile share each client's write (one syscall for several).
            self._deferred = True
            loop.call_later(FLUSH_DELAY, self._flush)
            return
        dirty, self._dirty = self._dirty, []
        self._scheduled = self._deferred = self._large_fanout = False
        self._last_flush = loop.time()
        for connection in dirty:
            connection.flush()
