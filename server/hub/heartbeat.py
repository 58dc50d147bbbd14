"""WebSocket heartbeats for all of a node's connections, from one timer (and, as a second
ring at SSE_PING_INTERVAL, the event streams' keep-alive comments: `hub.keepalive`; their
clients never answer, so an event stream's `ping` moves its `seen` and it is never judged).

A connection that sent nothing for WS_HEARTBEAT seconds is pinged; one that then sends
nothing (no pong, no message) for another WS_HEARTBEAT/2 seconds is dropped (1006: no close
frame, the peer is not listening). Any complete message counts as an answer, so a client
busy uploading is never pinged; while one of its messages is being handled (its next
messages wait, and a pong read meanwhile does not count) the socket (ws_protocol.py) sets
`seen` to infinity: not judged.

aiohttp's own heartbeat (`WebSocketResponse(heartbeat=...)`) keeps two timers per
connection, re-armed by a callback on every chunk received, and makes a task per ping.
Here a connection costs two floats: the connections are spread over the buckets of a ring,
and every TICK the next bucket is visited, so each connection is looked at every
WS_HEARTBEAT/2 seconds and a visit costs a comparison. Measured (c100k, 10,000 connections,
before/after on one machine): 0.6 KB less memory per connection, idle CPU 2.2 -> 1.7 % of
a core (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

TICK = 0.5  # seconds between two bucket visits


class Beating(Protocol):
    """What the heartbeat needs of a connection (ws_connection.py)."""

    closed: bool
    seen: float  # when the client last sent a message (time.monotonic())
    pinged: float  # when it was last pinged (0: never)
    beat: int  # its bucket

    def ping(self, now: float) -> None: ...

    def unresponsive(self) -> None: ...


class Heartbeat:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.answer_within = interval / 2
        self._buckets: list[set[Beating]] = [
            set() for _ in range(max(1, math.ceil(self.answer_within / TICK)))
        ]
        self._next = 0  # the bucket the next connection joins
        self.pings = 0
        self.dropped = 0

    @property
    def period(self) -> float:
        """Seconds between two visits of a connection."""
        return len(self._buckets) * TICK

    def add(self, connection: Beating) -> None:
        connection.beat = self._next
        self._buckets[self._next].add(connection)
        self._next = (self._next + 1) % len(self._buckets)

    def remove(self, connection: Beating) -> None:
        self._buckets[connection.beat].discard(connection)

    async def run(self) -> None:
        """Visit the next bucket every TICK, until cancelled."""
        turn = 0
        while True:
            await asyncio.sleep(TICK)
            self.visit(turn, time.monotonic())
            turn = (turn + 1) % len(self._buckets)

    def visit(self, turn: int, now: float) -> None:
        """Ping who has been silent for `interval`, drop who has not answered a ping for
        `answer_within`. (A visit may come up to half a TICK early: the clock is read once.)"""
        slack = TICK / 2
        silent_for = self.interval - slack
        answer_within = self.answer_within - slack
        unresponsive = []
        for connection in self._buckets[turn % len(self._buckets)]:
            if connection.closed:
                continue
            if connection.pinged > connection.seen:  # a ping waits for an answer
                if now - connection.pinged >= answer_within:
                    unresponsive.append(connection)
            elif now - connection.seen >= silent_for:
                connection.ping(now)
                self.pings += 1
        for connection in unresponsive:
            self.dropped += 1
            connection.unresponsive()
