"""`c20k-sse`: N authenticated event streams (GET /realtime/events) on ONE server process,
each on its own `user:<id>` channel and the shared `crowd:` channel, at every size of
`--sizes` (default 1,000 and 10,000; the issue's 20,000 needs 20,512 open files): the same
storm, memory and fan-out measurements as c100k (bench/scenarios/c100k.py), with the
stream client of bench/crowd_sse.py."""

from __future__ import annotations

import asyncio
import secrets

from bench import crowd_accounts, system
from bench import crowd_phases as phases
from bench import crowd_report as report
from bench import realtime as rt
from bench.crowd_sse import StreamClient
from bench.harness import Harness
from bench.report import Measurement, Result
from bench.scenarios import Options, ScenarioError, scenario
from bench.wsclient import WebSocket

DEFAULT_SIZES = (1_000, 10_000)


@scenario("c20k-sse", "N authenticated event streams on one process (--sizes; 20,000)")
async def c20k_sse(harness: Harness, options: Options) -> Result:
    if harness.server_processes != 1:
        raise ScenarioError("c20k-sse measures one server process: no --server-processes")
    sizes = options.sizes or DEFAULT_SIZES
    notes = [report.check_descriptors(harness, sizes)]
    headers = await rt.bench_headers(harness)
    rows: list[Measurement] = []
    for index, size in enumerate(sizes):
        if index:
            harness.restart_servers()  # each size measured by a fresh process
        publisher, _ = await rt.open_ws(harness, headers)
        publisher.on_message = lambda ws, opcode, payload: None
        try:
            rows.extend(await _one_size(harness, options, size, publisher, notes))
        finally:
            await rt.close_all([publisher])
    return Result("c20k-sse", "crowd", max(sizes), rows, notes, None, [])


async def _one_size(
    harness: Harness, options: Options, size: int, publisher: WebSocket, notes: list[str]
) -> list[Measurement]:
    assert harness.server is not None
    pid = harness.server.pid
    tracker = phases.Tracker(f"{phases.SHARED_NAMESPACE}:s{size}-{secrets.token_hex(3)}")

    def make(index: int, account: crowd_accounts.Account) -> StreamClient:
        return StreamClient(index, account.user_id, account.token, tracker.on_message)

    async with crowd_accounts.clients(harness, size, make) as clients:
        await rt.wait_quiet(harness)
        rss_before = system.process_rss_bytes(pid)
        storm = await phases.storm(harness, clients, tracker.shared_channel)
        await rt.wait_quiet(harness)
        await asyncio.sleep(1)
        rss_at = system.process_rss_bytes(pid)
        cast = await phases.broadcast(
            harness, publisher, tracker, clients, min(options.duration, 10)
        )
        missed = sum(client.missed for client in clients)
        repeated = sum(client.duplicates for client in clients)
    at = f"N={size:,} SSE"
    notes.append(
        f"{at}: server RSS {rss_before / 2**20:.0f} -> {rss_at / 2**20:.0f} MiB; generator "
        f"CPU {storm.cpu.client:.1f} s in the storm"
    )
    return [
        report.storm_row(at, "connect, auth, 2 channels", storm),
        report.memory_row(at, storm, rss_before, rss_at),
        report.first_row(at, storm.opened, tracker, cast),
        report.broadcast_row(at, tracker, cast, missed, repeated),
    ]
