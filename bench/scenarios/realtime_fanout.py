"""WebSocket fan-out scenarios (bench/realtime.py's Fanout does the bookkeeping):
`ws-broadcast` (closed-loop throughput to 1,000 subscribers, one publisher and then 16) and
`ws-latency` (delivery latency at 20 publications/s to 1,000 subscribers)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from array import array

from bench import realtime as rt
from bench.harness import Harness
from bench.report import Result, Target
from bench.scenarios import Options, ScenarioError, scenario
from bench.wsclient import WebSocket, stamp_arrivals

SUBSCRIBERS = 1000
SINGLE_WINDOW = 16  # one publisher: publications in flight (not yet received by everyone)
PUBLISHERS = 16  # the second phase: 16 publishers, one publication in flight each
BROADCAST_TARGET = 200_000
BROADCAST_P95_MS = 100.0
LATENCY_RATE = 20.0  # publications per second
LATENCY_P99_MS = 15.0
# The subscribers spread over two or more server processes (--server-processes): each
# writes its share of a publication's deliveries in parallel (the scale-out issue's target).
LATENCY_P99_MS_SPREAD = 10.0


async def _setup(harness: Harness, publishers: int) -> tuple[rt.Fanout, list[WebSocket], str]:
    """SUBSCRIBERS subscribers of a new public channel, `publishers` publisher connections
    (in fanout.publishers) and a first publication received by all, which also drains the
    join events of the setup. Returns how long subscribing and that publication took."""
    started = time.perf_counter()
    headers = await rt.bench_headers(harness)
    channel = f"public:bench-{secrets.token_hex(4)}"
    fanout = rt.Fanout(channel, SUBSCRIBERS)
    connections = await rt.ws_subscribers(harness, headers, SUBSCRIBERS, channel, fanout)
    subscribed = time.perf_counter()
    try:
        await rt.publishers(harness, headers, fanout, publishers)
        await rt.barrier(fanout)
    except BaseException:
        await rt.close_all([*connections, *fanout.publishers])
        raise
    took = f"{subscribed - started:.1f}s + {time.perf_counter() - subscribed:.1f}s"
    if len(fanout.nodes) > 1:
        took += "; subscribers per server process: " + ", ".join(
            f"{count:,}" for count in sorted(fanout.nodes.values(), reverse=True)
        )
    return fanout, connections, took


@scenario("ws-broadcast", "WebSocket fan-out to 1,000 subscribers: 1 publisher, then 16")
async def ws_broadcast(harness: Harness, options: Options) -> Result:
    setup_fanout, connections, took = await _setup(harness, PUBLISHERS)
    senders = setup_fanout.publishers
    rows = []
    try:
        for count, window in ((1, SINGLE_WINDOW), (PUBLISHERS, PUBLISHERS)):
            fanout = setup_fanout.successor(window, senders[:count], connections)
            phase = await rt.closed_loop(harness, options, fanout, connections)
            if not phase.drained:
                raise ScenarioError(
                    f"{count} publisher(s): publications did not reach every subscriber "
                    f"within {rt.DRAIN_TIMEOUT:g}s after the load stopped"
                )
            what = f"{count} publisher{'s' if count > 1 else ''} -> {SUBSCRIBERS:,} WS subs"
            rows.append((rt.fanout_row(what, fanout, connections, phase), fanout, phase))
            setup_fanout = fanout
    finally:
        await rt.close_all([*connections, *senders])
    quiet = await rt.wait_quiet(harness)
    notes = []
    for row, fanout, _ in rows:
        lat = row.latency_ms
        row.target = Target(
            f">= {BROADCAST_TARGET:,}/s, p95 < {BROADCAST_P95_MS:g} ms, 0 lost",
            row.throughput >= BROADCAST_TARGET
            and lat is not None
            and lat.p95 < BROADCAST_P95_MS
            and row.errors == 0,
        )
        notes.append(
            f"ws-broadcast: {len(fanout.publishers)} publisher(s), {fanout.window} publications "
            f"in flight (the next is sent when one reached all {SUBSCRIBERS:,}): "
            f"{fanout.measured_acked:,} measured publications, "
            f"{row.details['lost']} deliveries lost, {row.details['offset_gaps']} offset gaps"
        )
    notes.append(
        f"ws-broadcast: setup (subscribe + first publication) {took}, quiet after close "
        f"{quiet:.1f}s"
    )
    cores = rows[-1][2].cpu.cores_busy_pct
    return Result(
        "ws-broadcast", "wsclient", SUBSCRIBERS, [r for r, _, _ in rows], notes, None, cores
    )


@scenario("ws-latency", "WebSocket delivery latency: 20 publications/s to 1,000 subscribers")
async def ws_latency(harness: Harness, options: Options) -> Result:
    fanout, connections, took = await _setup(harness, 1)
    senders = fanout.publishers
    fanout = fanout.successor(0, senders, connections)  # open loop: published below
    fanout.read_latencies = array("q")
    loop = asyncio.get_running_loop()
    interval = 1 / LATENCY_RATE

    async def paced(seconds: float) -> None:
        start = loop.time()
        for i in range(round(seconds * LATENCY_RATE)):
            await asyncio.sleep(max(0.0, start + i * interval - loop.time()))
            fanout.publish()

    try:
        for ws in connections:  # latency to the arrival at the subscriber's socket
            try:
                stamp_arrivals(ws)
            except OSError as error:  # not Linux, or a kernel without SO_TIMESTAMPNS
                raise ScenarioError(f"no kernel receive timestamps here: {error}") from error
        fanout.running = True
        await paced(options.warmup)
        before = harness.snapshot()
        fanout.begin_measure()
        await paced(options.duration)
        fanout.end_measure()
        drained = await fanout.stop()
        after = harness.snapshot()
        closed = sum(1 for ws in connections if ws.lost.done())
    finally:
        await rt.close_all([*connections, *senders])
    quiet = await rt.wait_quiet(harness)
    phase = rt.Phase(before.until(after), drained, closed)
    row = rt.fanout_row(
        f"{LATENCY_RATE:g} pub/s -> {SUBSCRIBERS:,} WS subs", fanout, connections, phase
    )
    p99 = row.latency_ms.p99 if row.latency_ms else float("inf")
    bound = LATENCY_P99_MS_SPREAD if len(fanout.nodes) > 1 else LATENCY_P99_MS
    row.target = Target(f"p99 < {bound:g} ms, 0 lost", p99 < bound and row.errors == 0 and drained)
    reads = fanout.read_latencies
    assert reads is not None
    # A kernel timestamp after this process's read would mean a wrong clock conversion.
    pairs = zip(fanout.latencies, reads, strict=True)
    impossible = sum(1 for arrived, read_at in pairs if arrived > read_at)
    read = dataclasses.replace(
        row,
        what="the same, until the generator read it",
        latency_ms=rt.percentiles_ns(reads),
        target=None,
    )
    notes = [
        f"ws-latency: open loop, one publication every {1000 * interval:g} ms; latency from the "
        f"publisher's send to the data's arrival at each subscriber's socket (the kernel's "
        f"receive time, SO_TIMESTAMPNS; {len(fanout.latencies):,} samples); the second row ends "
        "when this one process, reading 1,000 sockets in turn, got to it; arrivals stamped "
        f"after their read: {impossible}; "
        f"setup (subscribe + first publication) {took}, quiet after close {quiet:.1f}s"
    ]
    return Result(
        "ws-latency", "wsclient", SUBSCRIBERS, [row, read], notes, None, phase.cpu.cores_busy_pct
    )
