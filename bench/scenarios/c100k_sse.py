"""`c20k-sse`: N authenticated event streams (GET /realtime/events) on ONE server process,
each on its own `user:<id>` channel and the shared `crowd:` channel, at every size of
`--sizes` (default 1,000 and 10,000; the issue's 20,000 needs 20,512 open files): the same
storm, memory and fan-out measurements as c100k (bench/scenarios/c100k.py), with the
stream client of bench/crowd_sse.py."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter

from bench import crowd_accounts, system
from bench import crowd_phases as phases
from bench import realtime as rt
from bench.crowd_sse import StreamClient
from bench.harness import Harness
from bench.report import Measurement, Result, Target
from bench.scenarios import Options, ScenarioError, scenario
from bench.scenarios.c100k import (
    FIRST_P99_TARGET_MS,
    RSS_TARGET,
    STORM_TARGET_S,
    check_descriptors,
)
from bench.wsclient import WebSocket

DEFAULT_SIZES = (1_000, 10_000)
EVENTS_PATH = "/realtime/events"


@scenario("c20k-sse", "N authenticated event streams on one process (--sizes; 20,000)")
async def c20k_sse(harness: Harness, options: Options) -> Result:
    if harness.server_processes != 1:
        raise ScenarioError("c20k-sse measures one server process: no --server-processes")
    sizes = options.sizes or DEFAULT_SIZES
    notes = [check_descriptors(harness, sizes)]
    headers = await rt.bench_headers(harness)
    publisher, _ = await rt.open_ws(harness, headers)
    publisher.on_message = lambda ws, opcode, payload: None
    rows: list[Measurement] = []
    try:
        for size in sizes:
            rows.extend(await _one_size(harness, options, size, publisher, notes))
    finally:
        await rt.close_all([publisher])
    return Result("c20k-sse", "crowd", max(sizes), rows, notes, None, [])


async def _storm(harness: Harness, clients: list[StreamClient]) -> tuple[float, Counter[str]]:
    failures: Counter[str] = Counter()

    async def join(client: StreamClient) -> None:
        try:
            await client.connect(rt.HOST, harness.port, EVENTS_PATH, timeout=60)
        except Exception as error:  # counted, reported; the rest go on
            failures[f"{type(error).__name__}: {str(error)[:80]}"] += 1
            client.drop()

    started = time.perf_counter()
    await rt.gather_limited(len(clients), lambda i: join(clients[i]), phases.OPEN_CONCURRENCY)
    return time.perf_counter() - started, failures


async def _one_size(
    harness: Harness, options: Options, size: int, publisher: WebSocket, notes: list[str]
) -> list[Measurement]:
    assert harness.server is not None
    pid = harness.server.pid
    crowd = await crowd_accounts.create(harness, size)
    tracker = phases.Tracker(f"{phases.SHARED_NAMESPACE}:s{size}-{secrets.token_hex(3)}")
    clients = [
        StreamClient(
            i, a.user_id, a.token, tracker.on_message, [f"user:{a.user_id}", tracker.shared_channel]
        )
        for i, a in enumerate(crowd.accounts)
    ]
    try:
        await rt.wait_quiet(harness)
        rss_before = system.process_rss_bytes(pid)
        before = harness.snapshot()
        seconds, failures = await _storm(harness, clients)
        storm_cpu = before.until(harness.snapshot())
        await rt.wait_quiet(harness)
        await asyncio.sleep(1)
        rss_at = system.process_rss_bytes(pid)
        cast = await phases.broadcast(
            harness, publisher, tracker, clients, min(options.duration, 10)
        )
        missed = sum(client.missed for client in clients)
    finally:
        for client in clients:
            client.drop()
        await crowd_accounts.delete(harness, crowd)
    opened = size - sum(failures.values())
    per_conn = (rss_at - rss_before) / max(1, opened)
    first = phases.percentiles(tracker.first_ns)
    shared = phases.percentiles(tracker.shared_ns)
    lost = cast.expected - cast.delivered
    at = f"N={size:,} SSE"
    notes.append(
        f"{at}: server RSS {rss_before / 2**20:.0f} -> {rss_at / 2**20:.0f} MiB; generator "
        f"CPU {storm_cpu.client:.1f} s in the storm"
    )
    return [
        Measurement(
            f"{at}: storm (connect, auth, 2 channels)", "streams/s", opened, seconds, None,
            sum(failures.values()), **storm_cpu.columns(), figure=f"{seconds:.1f} s",
            target=Target(f"< {STORM_TARGET_S:g} s, 0 failed",
                          seconds < STORM_TARGET_S and not failures),
            details={"failures": dict(failures)},
        ),
        Measurement(
            f"{at}: server RSS per stream", "B", opened, seconds, None, 0, **storm_cpu.columns(),
            figure=f"{per_conn / 1024:.2f} KB/stream",
            target=Target(f"<= {RSS_TARGET // 1024} KB", per_conn <= RSS_TARGET),
        ),
        Measurement(
            f"{at}: one publication -> all", "deliveries", len(tracker.first_ns), cast.seconds,
            first, opened - len(tracker.first_ns), 0.0, 0.0,
            figure=f"{len(tracker.first_ns):,} got it",
            target=Target(f"p99 < {FIRST_P99_TARGET_MS:g} ms",
                          first is not None and first.p99 < FIRST_P99_TARGET_MS),
        ),
        Measurement(
            f"{at}: 1 pub/s x {cast.published} -> all", "deliveries/s", cast.delivered,
            cast.seconds, shared, lost + missed, **cast.cpu.columns(),
            target=Target("0 lost, 0 missed", lost == 0 and missed == 0),
        ),
    ]  # fmt: skip
