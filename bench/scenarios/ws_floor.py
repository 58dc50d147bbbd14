"""`ws-floor`: what one idle WebSocket costs in memory, layer by layer, so the c100k figure
(server RSS per connection) can be read against what the stack itself needs. N connections
(`--sizes`, default 10,000) from the c100k client (bench/crowd.py) to:

- raw: an asyncio Protocol on uvloop that answers the upgrade by hand (the floor of any
  connection a Python process holds: its transport and one object);
- aiohttp: a bare aiohttp WebSocketResponse, no middleware, no application state;
- server: this server, authenticated (as in production), connected, not subscribed.

Each row is the growth of the process's RSS divided by N (a fresh process each time, so
memory freed earlier is not reused). The bare servers are bench/floor_server.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from bench import crowd_accounts, floor_server, system
from bench import crowd_report as report
from bench import realtime as rt
from bench.crowd import Client
from bench.harness import PROJECT_ROOT, Harness
from bench.report import Measurement, Result
from bench.scenarios import Options, ScenarioError, scenario

DEFAULT_SIZE = 10_000
CONCURRENCY = 200
SETTLE_SECONDS = 2.0


@scenario("ws-floor", "memory per idle WebSocket: raw asyncio, bare aiohttp, this server")
async def ws_floor(harness: Harness, options: Options) -> Result:
    if harness.server_processes != 1:
        raise ScenarioError("ws-floor measures one server process: no --server-processes")
    size = max(options.sizes or (DEFAULT_SIZE,))
    notes = [report.check_descriptors(harness, (size,))]
    rows = [await _bare(harness, kind, size) for kind in ("raw", "aiohttp")]
    rows.append(await _server(harness, size))
    return Result("ws-floor", "crowd", size, rows, notes, None, [])


async def _connect(clients: Sequence[Client], port: int) -> tuple[float, int]:
    """Connect them all (CONCURRENCY at a time); the seconds it took and the failures."""
    failed = 0

    async def one(client: Client) -> None:
        nonlocal failed
        try:
            await client.connect(rt.HOST, port, client.PATH)
        except Exception:  # counted; the row says how many
            failed += 1

    started = time.perf_counter()
    await rt.gather_limited(len(clients), lambda i: one(clients[i]), CONCURRENCY)
    return time.perf_counter() - started, failed


async def _grown(
    harness: Harness, what: str, pid: int, clients: Sequence[Client], port: int
) -> Measurement:
    """Connect the clients to the process `pid` listening on `port`: its RSS growth."""
    await rt.wait_quiet(harness)
    before = system.process_rss_bytes(pid)
    seconds, failed = await _connect(clients, port)
    await rt.wait_quiet(harness)
    await asyncio.sleep(SETTLE_SECONDS)
    grown = system.process_rss_bytes(pid) - before
    size = len(clients)
    return Measurement(
        what, "B", size - failed, seconds, None, failed, 0.0, 0.0,
        figure=f"{grown / max(1, size - failed) / 1024:.2f} KB/conn",
    )  # fmt: skip


async def _bare(harness: Harness, kind: str, size: int) -> Measurement:
    port = system.free_port()
    server = floor_server.start(kind, port, str(PROJECT_ROOT))
    clients = [Client(i, 0, "-", lambda *_: None) for i in range(size)]
    try:
        assert server.stdout is not None
        ready = await asyncio.to_thread(server.stdout.readline)
        if ready.strip() != b"ready":
            raise ScenarioError(f"bench.floor_server {kind} did not start")
        return await _grown(
            harness, f"{kind}: idle WebSocket, N={size:,}", server.pid, clients, port
        )
    finally:
        for client in clients:
            client.drop()
        server.kill()
        server.wait()


async def _server(harness: Harness, size: int) -> Measurement:
    assert harness.server is not None

    def make(index: int, account: crowd_accounts.Account) -> Client:
        return Client(index, account.user_id, account.token, lambda *_: None)

    what = f"server: authenticated, N={size:,}"
    async with crowd_accounts.clients(harness, size, make) as clients:
        return await _grown(harness, what, harness.server.pid, clients, harness.port)
