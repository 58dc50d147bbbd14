"""WebSocket scenarios (bench/wsclient.py is the client): `ws-ping` (round trips on 200
connections) and `ws-idle` (server memory per idle authenticated, subscribed connection).
The fan-out scenarios are in realtime_fanout.py."""

from __future__ import annotations

import asyncio
import gc
import secrets
import time
from array import array
from collections.abc import Awaitable, Callable

from bench import realtime as rt
from bench import system
from bench.harness import Harness
from bench.report import Measurement, Result, Target
from bench.scenarios import Options, ScenarioError, scenario
from bench.wsclient import WebSocket, client_frame

PING_CONNECTIONS = 200
PING_P99_MS = 15.0
PING_TARGET = 35_000
IDLE_CONNECTIONS = 2000
IDLE_WARMUP_CONNECTIONS = 50
IDLE_TARGET_KB = 20.0
IDLE_SETTLE = 2.0
_perf_ns = time.perf_counter_ns


class Pinger:
    """Each connection has one `{"type":"ping"}` in flight and sends the next one from the
    callback that read the pong. `ws.user` holds the send time of its ping."""

    def __init__(self) -> None:
        self.frame = client_frame(b'{"type":"ping"}')
        self.running = False
        self.measuring = False
        self.count = 0
        self.other = 0
        self.latencies: array[int] = array("q")
        self.in_flight = 0
        self.idle = asyncio.Event()

    def send(self, ws: WebSocket) -> None:
        ws.user = _perf_ns()
        ws.send_raw(self.frame)

    def start(self, connections: list[WebSocket]) -> None:
        self.running = True
        self.idle.clear()
        self.in_flight = len(connections)
        for ws in connections:
            ws.on_message = self.on_message
            self.send(ws)

    def on_message(self, ws: WebSocket, opcode: int, payload: bytes) -> None:
        if not payload.startswith(b'{"type":"pong"'):
            self.other += 1
            return
        if self.measuring:
            self.latencies.append(ws.recv_ns - ws.user)
            self.count += 1
        if self.running:
            ws.user = _perf_ns()
            ws.send_raw(self.frame)
        else:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()


async def _connections(harness: Harness, headers: dict[str, str], count: int) -> list[WebSocket]:
    async def one(i: int) -> WebSocket:
        return (await rt.open_ws(harness, headers))[0]

    return await rt.gather_limited(count, one)


@scenario("ws-ping", "WebSocket ping/pong: 200 connections, one ping in flight each")
async def ws_ping(harness: Harness, options: Options) -> Result:
    headers = await rt.bench_headers(harness)
    connections = await _connections(harness, headers, PING_CONNECTIONS)
    try:
        pinger = Pinger()
        pinger.start(connections)
        await asyncio.sleep(options.warmup)
        before = harness.snapshot()
        pinger.measuring = True
        started = time.perf_counter()
        await asyncio.sleep(options.duration)
        pinger.measuring = False
        elapsed = time.perf_counter() - started
        after = harness.snapshot()
        pinger.running = False
        drained = await _wait(pinger.idle, 10.0)
    finally:
        await rt.close_all(connections)
    cpu = before.until(after)
    rate = pinger.count / elapsed
    latency = rt.percentiles_ns(pinger.latencies)
    p99 = latency.p99 if latency else float("inf")
    errors = pinger.other + (0 if drained else pinger.in_flight)
    row = Measurement(
        what=f"ping->pong round trips, {PING_CONNECTIONS} conns",
        unit="msgs/s",
        operations=pinger.count,
        seconds=elapsed,
        latency_ms=latency,
        errors=errors,
        **cpu.columns(),
        target=Target(
            f">= {PING_TARGET:,} msgs/s, p99 < {PING_P99_MS:g} ms",
            rate >= PING_TARGET and p99 < PING_P99_MS and errors == 0,
        ),
        details={"unexpected_frames": pinger.other, "services_cpu_s": cpu.services},
    )
    notes = [
        "ws-ping: msgs/s counts round trips (a ping answered by its pong), latency is from "
        "sending the ping to reading the pong"
    ]
    return Result("ws-ping", "wsclient", PING_CONNECTIONS, [row], notes, None, cpu.cores_busy_pct)


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


@scenario("ws-idle", "server memory per idle WebSocket: 2,000 authenticated, subscribed")
async def ws_idle(harness: Harness, options: Options) -> Result:
    assert harness.server is not None
    pid = harness.server.pid
    limit = system.raise_open_files_limit(IDLE_CONNECTIONS + 1024)
    if limit < IDLE_CONNECTIONS + 64:
        raise ScenarioError(f"RLIMIT_NOFILE is {limit}: too low for {IDLE_CONNECTIONS} sockets")
    headers = await rt.bench_headers(harness)

    def opener(prefix: str) -> Callable[[int], Awaitable[WebSocket]]:
        async def one(i: int) -> WebSocket:
            ws, _ = await rt.open_ws(harness, headers)
            await rt.subscribe(ws, f"public:{prefix}-{i}")
            return ws

        return one

    # a first few connections warm what every connection uses once (code paths, caches)
    warm = await rt.gather_limited(IDLE_WARMUP_CONNECTIONS, opener(f"warm-{secrets.token_hex(3)}"))
    await rt.close_all(warm)
    await rt.wait_quiet(harness)
    await asyncio.sleep(IDLE_SETTLE)
    rss_before = system.process_rss_bytes(pid)
    opened = time.perf_counter()
    connections = await rt.gather_limited(IDLE_CONNECTIONS, opener(f"idle-{secrets.token_hex(3)}"))
    opening = time.perf_counter() - opened
    try:
        await rt.wait_quiet(harness)
        await asyncio.sleep(IDLE_SETTLE)
        rss_open = system.process_rss_bytes(pid)
        before = harness.snapshot()  # the idle phase: heartbeats and presence upkeep only
        samples = []
        deadline = time.monotonic() + options.duration
        while time.monotonic() < deadline:
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            samples.append(system.process_rss_bytes(pid))
        after = harness.snapshot()
        alive = sum(1 for ws in connections if not ws.lost.done())
    finally:
        await rt.close_all(connections)
    await rt.wait_quiet(harness)
    gc.collect()
    rss_closed = system.process_rss_bytes(pid)
    cpu = before.until(after)
    rss_idle = max(samples, default=rss_open)
    per_connection_kb = (rss_idle - rss_before) / IDLE_CONNECTIONS / 1024
    errors = IDLE_CONNECTIONS - alive
    row = Measurement(
        what=f"server RSS per idle subscribed WS ({IDLE_CONNECTIONS:,})",
        unit="KB/conn",
        operations=IDLE_CONNECTIONS,
        seconds=cpu.seconds,
        latency_ms=None,
        errors=errors,
        **cpu.columns(),
        figure=f"{per_connection_kb:,.1f} KB/conn",
        target=Target(
            f"<= {IDLE_TARGET_KB:g} KB/conn", per_connection_kb <= IDLE_TARGET_KB and errors == 0
        ),
        details={
            "rss_before_mb": rss_before / 2**20,
            "rss_open_mb": rss_open / 2**20,
            "rss_idle_max_mb": rss_idle / 2**20,
            "rss_after_close_mb": rss_closed / 2**20,
            "open_seconds": opening,
            "services_cpu_s": cpu.services,
        },
    )
    notes = [
        f"ws-idle: VmRSS {rss_before / 2**20:.1f} MB before, {rss_idle / 2**20:.1f} MB with "
        f"{IDLE_CONNECTIONS:,} connections (each on its own public channel, one account), "
        f"{rss_closed / 2**20:.1f} MB after closing them; opened in {opening:.1f}s; the CPU "
        f"columns cover {cpu.seconds:.0f}s of idleness"
    ]
    return Result("ws-idle", "wsclient", IDLE_CONNECTIONS, [row], notes, None, cpu.cores_busy_pct)
