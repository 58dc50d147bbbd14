"""`webrtc-idle`: server memory and CPU per idle data-channel peer at 100 to 1,000 aiortc
peers (bench/webrtc.py connects them), one peer count after another, with a plot."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from bench import loadgen, plot, system
from bench import realtime as rt
from bench import webrtc as wrtc
from bench.harness import PROJECT_ROOT, Harness
from bench.report import Measurement, Result, Target
from bench.scenarios import Options, ScenarioError, scenario

IDLE_SIZES = (100, 250, 500, 1000)
IDLE_WARMUP_PEERS = 10
IDLE_OPEN_CONCURRENCY = 8
IDLE_TARGET_MIB = 0.2  # issue 15
IDLE_SETTLE = 2.0
IDLE_QUIET_PCT = 25.0  # 1,000 idle peers keep the server a little busy (consent checks)
MB = wrtc.MB


@scenario(
    "webrtc-idle",
    "server memory and CPU per idle data-channel peer at 100, 250, 500, 1,000 aiortc peers",
)
async def webrtc_idle(harness: Harness, options: Options) -> Result:
    """One peer count after another (`--sizes`; the peers of a size stay for the next):
    VmRSS of the server per peer over its VmRSS before the first, and the CPU of server and
    generator over `--duration` seconds of idleness at each size."""
    assert harness.server is not None
    pid = harness.server.pid
    sizes = options.sizes or IDLE_SIZES
    limit = system.raise_open_files_limit(4 * max(sizes) + 1024)
    if limit < 2 * max(sizes) + 64:
        raise ScenarioError(f"RLIMIT_NOFILE is {limit}: too low for {max(sizes)} peers")
    wrtc.use_loopback()
    headers = await rt.bench_headers(harness)
    admin = await wrtc.admin_headers(harness)
    failures: Counter[str] = Counter()
    peers: list[wrtc.ClientPeer] = []
    rows: list[Measurement] = []
    points: list[dict[str, float]] = []
    async with loadgen.session(harness.base_url, IDLE_OPEN_CONCURRENCY + 2) as client:
        await wrtc.warm_up(harness, client, headers, admin, IDLE_WARMUP_PEERS)
        await asyncio.sleep(IDLE_SETTLE)
        rss_before = system.process_rss_bytes(pid)
        try:
            for size in sorted(sizes):
                already = len(peers)
                opening = await wrtc.open_until(
                    client, headers, peers, size, failures, IDLE_OPEN_CONCURRENCY
                )
                await rt.wait_quiet(harness, busy_pct=IDLE_QUIET_PCT)
                await asyncio.sleep(IDLE_SETTLE)
                row, point = await _idle_size(harness, client, admin, peers, already, options)
                row.details.update(open_seconds=opening, failures=dict(failures))
                row.errors += size - len(peers)  # failed to connect
                per_peer = (point["rss_mib"] * MB - rss_before) / max(1, len(peers)) / MB
                row.figure = f"{per_peer:.3f} MiB/peer"
                point["rss_per_peer_mib"] = per_peer
                passed = point["rss_per_peer_mib"] <= IDLE_TARGET_MIB and not row.errors
                row.target = Target(f"<= {IDLE_TARGET_MIB:g} MiB/peer", passed)
                rows.append(row)
                points.append(point)
                harness.check_alive()
        finally:
            await wrtc.close_peers(peers)
        left, waited = await wrtc.wait_peer_count(client, admin, 0, timeout=60.0)
        await rt.wait_quiet(harness)
        rss_closed = system.process_rss_bytes(pid)
    done = [int(p["peers"]) for p in points]
    path = plot.curves("webrtc-idle", "idle data-channel peers", done, [
        plot.Panel("CPU while idle", "% of a core", {
            "server": [p["server_cpu_pct"] for p in points],
            "generator": [p["client_cpu_pct"] for p in points]}),
        plot.Panel("server memory (VmRSS)", "MiB", {"server": [p["rss_mib"] for p in points]}),
        plot.Panel("server memory per peer", "MiB/peer",
                   {"server": [p["rss_per_peer_mib"] for p in points]}),
    ])  # fmt: skip
    notes = [
        f"webrtc-idle: server VmRSS {rss_before / MB:.1f} MiB before the first peer (after "
        f"{IDLE_WARMUP_PEERS} warm-up peers), {rss_closed / MB:.1f} MiB after closing all "
        f"({left} server peers left after {waited:.1f}s); each size adds peers "
        f"{IDLE_OPEN_CONCURRENCY} at a time to the previous ones (p50/p95/max columns: "
        f"offer->open under that concurrency), then measures {options.duration:g}s of "
        f"idleness (ICE consent checks, SCTP heartbeats); MiB/peer = (max VmRSS in that "
        f"window - VmRSS before) / peers; plot: {path.relative_to(PROJECT_ROOT)}"
    ]
    return Result("webrtc-idle", "aiortc", max(sizes), rows, notes, None, [])


async def _idle_size(
    harness: Harness,
    client: Any,
    admin: dict[str, str],
    peers: list[wrtc.ClientPeer],
    already: int,
    options: Options,
) -> tuple[Measurement, dict[str, float]]:
    """`options.duration` seconds of idle `peers` (the first `already` of them opened for
    an earlier size): CPU, the largest VmRSS sampled each second, and how many peers both
    sides still see connected."""
    assert harness.server is not None
    size = len(peers)
    pid = harness.server.pid
    before = harness.snapshot()
    samples = [system.process_rss_bytes(pid)]
    deadline = time.monotonic() + options.duration
    while time.monotonic() < deadline:
        await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        samples.append(system.process_rss_bytes(pid))
    after = harness.snapshot()
    listed = await wrtc.server_peers(client, admin)
    alive = sum(1 for peer in peers if peer.pc.connectionState == "connected")
    server_connected = sum(1 for p in listed if p["state"] == "connected")
    cpu = before.until(after)
    row = Measurement(
        what=f"{size} idle data-channel peers: server RSS per peer",
        unit="MiB/peer",
        operations=size,
        seconds=cpu.seconds,
        latency_ms=wrtc.latency([p.total_ms for p in peers[already:]]),
        errors=size - min(alive, server_connected),
        **cpu.columns(),
        details={"rss_idle_max_mb": max(samples) / MB, "client_connected": alive,
                 "server_connected": server_connected, "services_cpu_s": cpu.services},
    )  # fmt: skip
    point = {
        "peers": float(size),
        "rss_mib": max(samples) / MB,
        "server_cpu_pct": row.server_cpu_pct,
        "client_cpu_pct": row.client_cpu_pct,
    }
    return row, point
