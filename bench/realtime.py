"""Shared pieces of the realtime scenarios: a bench account, many WebSocket/SSE subscribers
opened concurrently, the `Fanout` that publishes from WebSocket publishers and counts what
every subscriber received (latency from a timestamp inside the published data), a
closed-loop phase and its table row, percentiles of nanosecond samples, and waiting until
the server is quiet again."""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from bench import accounts, loadgen, system, wsclient
from bench.harness import Harness
from bench.report import Measurement, Percentiles
from bench.scenarios import Options
from bench.system import CpuDelta
from bench.wsclient import EventStream, WebSocket

HOST = "127.0.0.1"
WS_PATH = "/realtime/ws"
OPEN_CONCURRENCY = 64  # connections being opened at once (aiohttp's listen backlog is 128)
DRAIN_TIMEOUT = 15.0  # seconds for the last publications to reach everyone after the load
PUBLICATION = b'{"type":"publication"'
ACK = b'{"type":"ack"'
NEVER = 2**63  # an int bound (comparing ints with math.inf costs more per delivery)
STAMP_BASE = 10**15  # stamps are perf_counter_ns() + a shift: 16 digits for 11 days
_perf_ns = time.perf_counter_ns
T = TypeVar("T")


async def bench_headers(harness: Harness) -> dict[str, str]:
    """A fresh `user` account (POST /auth/register + /auth/login): its Bearer header."""
    async with loadgen.session(harness.base_url, 2) as client:
        return await accounts.bench_user_headers(client)


async def gather_limited(
    count: int, make: Callable[[int], Awaitable[T]], limit: int = OPEN_CONCURRENCY
) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def one(i: int) -> T:
        async with semaphore:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def open_ws(harness: Harness, headers: dict[str, str]) -> tuple[WebSocket, dict[str, Any]]:
    """An authenticated WebSocket and its `connected` message."""
    ws = await wsclient.connect(HOST, harness.port, WS_PATH, headers)
    return ws, await ws.recv_json("connected")


async def subscribe(ws: WebSocket, channel: str) -> dict[str, Any]:
    ws.send_json({"type": "subscribe", "channel": channel, "id": 1})
    return await ws.recv_json("subscribed", timeout=30)


def cursor_offset(cursor: str) -> int:
    return int(cursor.rpartition(":")[2])


async def close_all(connections: Sequence[WebSocket | EventStream], timeout: float = 5.0) -> None:
    """Close frames (WebSocket) or FIN (SSE) on every connection; abort the stragglers."""
    for connection in connections:
        if isinstance(connection, WebSocket):
            connection.begin_close()
        else:
            connection.close()
    pending = [c.lost for c in connections if not c.lost.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    for connection in connections:
        if not connection.lost.done():
            connection.abort()


async def wait_quiet(harness: Harness, *, busy_pct: float = 5.0, timeout: float = 30.0) -> float:
    """Wait until the server used less than `busy_pct` of a core for half a second (it may
    still be sending leave events to closing subscribers); return the seconds waited."""
    assert harness.server is not None
    pid = harness.server.pid
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = system.process_cpu_seconds(pid)
        await asyncio.sleep(0.5)
        if 100 * (system.process_cpu_seconds(pid) - before) / 0.5 < busy_pct:
            break
        harness.check_alive()
    return time.monotonic() - started


def percentiles_ns(samples: Sequence[int]) -> Percentiles | None:
    """Nearest-rank p50/p95/p99 of nanosecond samples, in milliseconds."""
    if not samples:
        return None
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1e6

    return Percentiles(rank(0.50), rank(0.95), rank(0.99))


class Subscriber:
    """What one subscriber received: every publication (offsets must be consecutive) and
    those of the measured phase."""

    __slots__ = ("gaps", "last_offset", "measured")

    def __init__(self, offset: int) -> None:
        self.last_offset = offset
        self.measured = 0
        self.gaps = 0


class Fanout:
    """Publishers (taking turns) and N subscribers of one channel. Every publication's data
    is {"t": perf_counter_ns() at sending + shift}; a subscriber's delivery latency is the
    perf_counter_ns() when its bytes were read + shift - t. `window` > 0 is a closed loop:
    that many publications are in flight, and the next one is sent when one has reached
    every subscriber. Otherwise the caller publishes (open loop, e.g. at a fixed rate)."""

    def __init__(self, channel: str, subscribers: int, window: int = 0) -> None:
        self.channel = channel
        self.subscribers = subscribers
        self.window = window
        self.nodes: dict[str, int] = {}  # subscribers per server node (their connected frame)
        self.publishers: list[WebSocket] = []
        self.running = False
        self.remaining: dict[int, int] = {}  # t -> subscribers still to receive it
        # t = perf_counter_ns() + shift, which has 16 digits, so the subscriber finds it at a
        # fixed place at the end of the frame
        self.shift = STAMP_BASE - _perf_ns()
        self.measure_from = NEVER  # bounds (t) of the measured publications
        self.measure_until = NEVER
        self.latencies: array[int] = array("q")
        # Set when the subscribers' arrivals are stamped by the kernel (stamp_arrivals):
        # `latencies` then end at the arrival, these at this process's read.
        self.read_latencies: array[int] | None = None
        self.last_delivery_ns = 0
        self.published = 0
        self.acked = 0
        self.measured_acked = 0
        self.errors: Counter[str] = Counter()
        self.unknown = 0  # deliveries of publications this Fanout did not send
        self._request = (
            b'{"type":"publish","channel":' + orjson.dumps(channel) + b',"id":%d,"data":{"t":%d}}'
        )
        self._head = PUBLICATION + b',"channel":' + orjson.dumps(channel) + b',"offset":'
        self._offset_at = len(self._head)
        self._idle = asyncio.Event()

    # -- publishing --------------------------------------------------------------------------
    def publish(self) -> None:
        t = _perf_ns() + self.shift
        self.remaining[t] = self.subscribers
        self._idle.clear()
        self.published += 1
        publishers = self.publishers
        publishers[self.published % len(publishers)].send_text(self._request % (t, t))

    def start(self) -> None:
        self.running = True
        for _ in range(self.window):
            self.publish()

    def begin_measure(self) -> None:
        self.measure_from = _perf_ns() + self.shift

    def end_measure(self) -> None:
        self.measure_until = _perf_ns() + self.shift

    async def stop(self, timeout: float = DRAIN_TIMEOUT) -> bool:
        """Stop publishing; wait until every publication reached every subscriber."""
        self.running = False
        if self.remaining:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                return False
        return True

    def _completed(self) -> None:
        if self.running and self.window:
            self.publish()
        elif not self.remaining:
            self._idle.set()

    def on_publisher(self, ws: WebSocket, opcode: int, payload: bytes) -> None:
        """The publisher's acks ({"type":"ack",...,"id":t}) and errors."""
        if payload.startswith(ACK):
            self.acked += 1
            t = int(payload[payload.rindex(b":") + 1 : -1])
            if self.measure_from <= t < self.measure_until:
                self.measured_acked += 1
            return
        message = orjson.loads(payload)
        if message.get("type") == "error":
            self.errors[str(message.get("code"))] += 1
            ref = message.get("ref")
            if isinstance(ref, int) and self.remaining.pop(ref, None) is not None:
                self._completed()  # that publication does not exist: keep the loop going

    # -- receiving ---------------------------------------------------------------------------
    def on_frame(self, ws: WebSocket, data: bytes, start: int, end: int) -> None:
        """A subscriber's frame (WebSocket.on_frame: `data[start:end]` is the payload). The
        generator's hot path: _delivery()'s parsing inlined for this channel's frame layout."""
        if not data.startswith(self._head, start):
            if data.startswith(PUBLICATION, start):  # another layout: find the offset
                at = data.index(b'"offset":', start, end) + 9
                self._delivery(ws.user, data, start, end, at, ws.recv_ns, ws.read_ns)
            return
        at = start + self._offset_at
        comma = data.index(b",", at, end)
        if data[end - 19] == 58:  # ':' before 16 digits and "}}"
            t = int(data[end - 18 : end - 2])
        else:
            t = int(data[data.rindex(b":", comma, end) + 1 : end - 2])
        self._count(ws.user, int(data[at:comma]), t, ws.recv_ns, ws.read_ns)

    def on_sse(self, stream: EventStream, event: bytes, data: bytes) -> None:
        if event == b"publication":
            at = data.index(b'"offset":') + 9
            self._delivery(stream.user, data, 0, len(data), at, stream.recv_ns, stream.read_ns)

    def _delivery(
        self,
        subscriber: Subscriber,
        data: bytes,
        start: int,
        end: int,
        at: int,
        recv_ns: int,
        read_ns: int,
    ) -> None:
        """One publication frame `data[start:end]` whose offset starts at `at`; it ends with
        `"data":{"t":<ns>}}`."""
        comma = data.index(b",", at, end)
        t = int(data[data.rindex(b":", comma, end) + 1 : end - 2])
        self._count(subscriber, int(data[at:comma]), t, recv_ns, read_ns)

    def _count(
        self, subscriber: Subscriber, offset: int, t: int, recv_ns: int, read_ns: int
    ) -> None:
        """One delivery of the publication sent at `t`: gaps, latency, completion."""
        if offset != subscriber.last_offset + 1:
            subscriber.gaps += 1
        subscriber.last_offset = offset
        if self.measure_from <= t < self.measure_until:
            self.latencies.append(recv_ns + self.shift - t)
            if self.read_latencies is not None:
                self.read_latencies.append(read_ns + self.shift - t)
            subscriber.measured += 1
            self.last_delivery_ns = recv_ns
        left = self.remaining.get(t)
        if left is None:
            self.unknown += 1
        elif left > 1:
            self.remaining[t] = left - 1
        else:
            del self.remaining[t]
            self._completed()

    # -- results -----------------------------------------------------------------------------
    def lost(self, subscribers: Sequence[Subscriber]) -> int:
        """Measured publications (acknowledged to the publisher) some subscriber lacks."""
        return sum(max(0, self.measured_acked - s.measured) for s in subscribers)

    def gaps(self, subscribers: Sequence[Subscriber]) -> int:
        return sum(s.gaps for s in subscribers)

    @property
    def delivered(self) -> int:
        """Deliveries of measured publications."""
        return len(self.latencies)

    def elapsed(self) -> float:
        """From the start of the measured phase to its last delivery, in seconds."""
        if not self.delivered or self.measure_from == NEVER:
            return 0.0
        return (self.last_delivery_ns + self.shift - self.measure_from) / 1e9

    def latency(self) -> Percentiles | None:
        return percentiles_ns(self.latencies)

    def successor(
        self,
        window: int,
        senders: Sequence[WebSocket],
        connections: Sequence[WebSocket | EventStream],
    ) -> Fanout:
        """A new Fanout (fresh counters) on the same channel and connections, for the next
        phase; this one must have been drained (stop() returned True)."""
        following = Fanout(self.channel, self.subscribers, window)
        following.publishers = list(senders)
        following.nodes = self.nodes
        for ws in senders:
            ws.on_message = following.on_publisher
        for connection in connections:
            connection.user = Subscriber(connection.user.last_offset)
            if isinstance(connection, WebSocket):
                connection.on_frame = following.on_frame
            else:
                connection.on_event = following.on_sse
        return following


@dataclass(frozen=True)
class Phase:
    cpu: CpuDelta
    drained: bool  # every publication reached every subscriber
    closed: int  # subscribers whose connection ended during the phase


async def closed_loop(
    harness: Harness,
    options: Options,
    fanout: Fanout,
    connections: Sequence[WebSocket | EventStream],
) -> Phase:
    """Warm up, then measure for options.duration; CPU from the start of the measured phase
    until its last publication reached every subscriber."""
    fanout.start()
    await asyncio.sleep(options.warmup)
    before = harness.snapshot()
    fanout.begin_measure()
    await asyncio.sleep(options.duration)
    fanout.end_measure()
    drained = await fanout.stop()
    after = harness.snapshot()
    closed = sum(1 for connection in connections if connection.lost.done())
    return Phase(before.until(after), drained, closed)


def fanout_row(
    what: str, fanout: Fanout, connections: Sequence[WebSocket | EventStream], phase: Phase
) -> Measurement:
    """The table row of a fan-out phase; errors are deliveries lost, offset gaps, refused
    publications, deliveries of unknown publications and connections the server closed."""
    subscribers = [connection.user for connection in connections]
    lost = fanout.lost(subscribers)
    gaps = fanout.gaps(subscribers)
    cpu = phase.cpu
    return Measurement(
        what=what,
        unit="deliveries/s",
        operations=fanout.delivered,
        seconds=fanout.elapsed(),
        latency_ms=fanout.latency(),
        errors=lost + gaps + sum(fanout.errors.values()) + fanout.unknown + phase.closed,
        **cpu.columns(),
        cpu_window_s=cpu.seconds,
        details={
            "publishers": len(fanout.publishers),
            "window": fanout.window,
            "publications_measured": fanout.measured_acked,
            "publications_total": fanout.published,
            "lost": lost,
            "offset_gaps": gaps,
            "publish_errors": dict(fanout.errors),
            "subscribers_closed_by_server": phase.closed,
            "drained": phase.drained,
            "services_cpu_s": cpu.services,
        },
    )


async def ws_subscribers(
    harness: Harness, headers: dict[str, str], count: int, channel: str, fanout: Fanout
) -> list[WebSocket]:
    """`count` WebSockets subscribed to `channel`, their messages going to `fanout`."""

    async def one(i: int) -> WebSocket:
        ws, hello = await open_ws(harness, headers)
        node = str(hello.get("node", "?"))
        fanout.nodes[node] = fanout.nodes.get(node, 0) + 1
        subscribed = await subscribe(ws, channel)
        ws.user = Subscriber(cursor_offset(subscribed["cursor"]))
        ws.on_frame = fanout.on_frame
        return ws

    return await gather_limited(count, one)


async def publishers(
    harness: Harness, headers: dict[str, str], fanout: Fanout, count: int = 1
) -> list[WebSocket]:
    """`count` WebSockets that publish for `fanout` in turn."""
    for _ in range(count):
        ws, _ = await open_ws(harness, headers)
        ws.on_message = fanout.on_publisher
        fanout.publishers.append(ws)
    return list(fanout.publishers)


async def barrier(fanout: Fanout, timeout: float = 60.0) -> None:
    """One publication that every subscriber must receive before anything is measured:
    the join events of the subscriptions (sent on the same bus channel before it) are
    then drained too."""
    fanout.publish()
    if not await fanout.stop(timeout):
        raise RuntimeError(
            f"the first publication did not reach every subscriber within {timeout:.0f}s "
            f"({sum(fanout.remaining.values())} deliveries missing; errors {dict(fanout.errors)})"
        )
