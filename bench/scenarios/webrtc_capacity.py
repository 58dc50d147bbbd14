"""How many server peers one process carries (issue 15), one peer count after another
(`--sizes`): `webrtc-echo-capacity` (data-channel peers each echoing 10 messages a second,
until p99 echo latency passes 50 ms) and `webrtc-media-capacity` (peers echoing a 640x480
video: CPU per peer, frames per second back, and the refusal of the peer past
WEBRTC_MAX_MEDIA_PEERS). Each draws its curves in bench/results/<scenario>.png."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection

from bench import loadgen, plot, system
from bench import realtime as rt
from bench import webrtc as wrtc
from bench import webrtc_media as media
from bench.harness import PROJECT_ROOT, Harness
from bench.report import Measurement, Percentiles, Result, Target
from bench.scenarios import Options, scenario

ECHO_SIZES = (10, 25, 50, 100, 200, 300, 400, 500, 600)
ECHO_RATE = 10.0  # messages per second per peer (issue 15)
ECHO_MESSAGE = 100  # bytes: a chat message or a game input
ECHO_P99_MS = 50.0
ECHO_DRAIN = 2.0  # seconds for the last echoes of a window to come back
ECHO_GIVE_UP_MS = 4 * ECHO_P99_MS  # a p99 over this ends the search (one over 50 ms may be
# noise of a shared machine: the next size is measured too)
ECHO_SETTLE = 3.0  # more seconds before a window: opening 100 peers leaves ICE/DTLS work
OPEN_CONCURRENCY = 8
NOISY_PCT = 20.0  # other processes' CPU (% of a core) above which a row is noisy
MEDIA_SIZES_MAX = 8  # default sizes: 1, 2, ... up to WEBRTC_MAX_MEDIA_PEERS, at most this
MEDIA_FIRST_FRAME = 15.0
MB = wrtc.MB


def _plot_path(name: str, sizes: list[int], panels: list[plot.Panel], log_x: bool) -> str:
    return str(plot.curves(name, "peers", sizes, panels, log_x=log_x).relative_to(PROJECT_ROOT))


# -- data-channel echo --------------------------------------------------------------------------


@scenario(
    "webrtc-echo-capacity",
    "data-channel peers each echoing 10 msgs/s: how many before p99 echo > 50 ms",
)
async def webrtc_echo_capacity(harness: Harness, options: Options) -> Result:
    """Adds peers size after size (the earlier ones keep sending); at each size, after
    `--warmup` seconds, the echoes of the messages due in the next `--duration` seconds."""
    assert harness.server is not None
    sizes = sorted(options.sizes or ECHO_SIZES)
    system.raise_open_files_limit(4 * max(sizes) + 1024)
    wrtc.use_loopback()
    headers = await rt.bench_headers(harness)
    admin = await wrtc.admin_headers(harness)
    failures: Counter[str] = Counter()
    peers: list[wrtc.ClientPeer] = []
    pumps: list[media.TimedEcho] = []
    tasks: list[asyncio.Task[None]] = []
    rows: list[Measurement] = []
    capacity: Measurement | None = None
    over: int | None = None
    async with loadgen.session(harness.base_url, OPEN_CONCURRENCY + 2) as client:
        await wrtc.warm_up(harness, client, headers, admin, 3)
        try:
            for size in sizes:
                opening = await wrtc.open_until(
                    client, headers, peers, size, failures, OPEN_CONCURRENCY
                )
                now = time.perf_counter()
                for peer in peers[len(pumps) :]:  # the new ones, spread over one interval
                    pump = media.TimedEcho(peer.channel, ECHO_RATE, ECHO_MESSAGE)
                    pumps.append(pump)
                    first_due = now + random.uniform(0, 1 / ECHO_RATE)
                    tasks.append(asyncio.ensure_future(pump.run(first_due)))
                row = await _echo_window(harness, pumps, options)
                row.errors += size - len(peers)  # failed to connect
                row.details.update(open_seconds=opening, failures=dict(failures))
                rows.append(row)
                harness.check_alive()
                if not _over(row):
                    capacity = row if over is None else capacity
                    continue
                over = over or size
                if row.errors or row.latency_ms is None or row.latency_ms.p99 > ECHO_GIVE_UP_MS:
                    break  # saturated: larger sizes would only be worse
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await wrtc.close_peers(peers)
        await wrtc.wait_peer_count(client, admin, 0, timeout=60.0)
    return _echo_result(rows, capacity, over)


def _over(row: Measurement) -> bool:
    return row.latency_ms is None or row.latency_ms.p99 > ECHO_P99_MS or row.errors > 0


async def _echo_window(
    harness: Harness, pumps: list[media.TimedEcho], options: Options
) -> Measurement:
    assert harness.server is not None
    await asyncio.sleep(options.warmup + ECHO_SETTLE)
    start = time.perf_counter()
    for pump in pumps:
        pump.record(start, start + options.duration)
    before = harness.snapshot()
    await asyncio.sleep(options.duration)
    after = harness.snapshot()
    rss = system.process_rss_bytes(harness.server.pid)
    await asyncio.sleep(ECHO_DRAIN)
    latencies = [ms for pump in pumps for ms in pump.latencies]
    due = sum(pump.due for pump in pumps)
    cpu = before.until(after)
    return Measurement(
        what=f"{len(pumps)} peers x {ECHO_RATE:g} msgs/s, {ECHO_MESSAGE} B, echo",
        unit="msgs/s",
        operations=len(latencies),
        seconds=options.duration,
        latency_ms=Percentiles.of_ms(latencies),
        errors=max(0, due - len(latencies)),  # not back within ECHO_DRAIN seconds
        **cpu.columns(),
        cpu_window_s=cpu.seconds,
        details={"peers": len(pumps), "due": due, "rss_mb": rss / MB,
                 "services_cpu_s": cpu.services},
    )  # fmt: skip


def _echo_result(rows: list[Measurement], capacity: Measurement | None, over: int | None) -> Result:
    sizes = [int(row.details["peers"]) for row in rows]
    path = _plot_path("webrtc-echo-capacity", sizes, [
        plot.Panel("echo latency", "ms", {
            "p50": [r.latency_ms.p50 if r.latency_ms else None for r in rows],
            "p99": [r.latency_ms.p99 if r.latency_ms else None for r in rows],
            f"{ECHO_P99_MS:g} ms": [ECHO_P99_MS for _ in rows]}),
        plot.Panel("CPU", "% of a core", {"server": [r.server_cpu_pct for r in rows],
                                          "generator": [r.client_cpu_pct for r in rows]}),
        plot.Panel("server memory (VmRSS)", "MiB", {"server": [r.details["rss_mb"] for r in rows]}),
    ], log_x=True)  # fmt: skip
    best = int(capacity.details["peers"]) if capacity is not None else 0
    answer = (
        f"{best} peers (p99 <= {ECHO_P99_MS:g} ms, nothing lost); at {over}: over"
        if over is not None
        else f">= {best} peers: p99 stayed <= {ECHO_P99_MS:g} ms at every size measured"
    )
    if capacity is not None:
        summary = Measurement(**{**vars(capacity), "details": dict(capacity.details)})
        summary.what = f"capacity: peers before p99 echo > {ECHO_P99_MS:g} ms"
        summary.figure = f"{best} peers"
        rows.append(summary)
    measured = rows[: len(sizes)]
    saturated = [int(r.details["peers"]) for r in measured if r.client_cpu_pct >= 90]
    noisy = [int(r.details["peers"]) for r in measured if (r.other_cpu_pct or 0) > NOISY_PCT]
    within_later = [int(r.details["peers"]) for r in measured
                    if over is not None and r.details["peers"] > over and not _over(r)]  # fmt: skip
    notes = [
        f"webrtc-echo-capacity: {answer}. Each peer sends {ECHO_MESSAGE}-byte binary messages "
        f"on `echo` at fixed times ({ECHO_RATE:g}/s, open loop: latency counted from when a "
        f"message was due, so a late sender counts as late); errors = echoes not back "
        f"{ECHO_DRAIN:g}s after the window; p99 is a true 99th percentile of every echo in the "
        f"window; plot: {path}",
    ]
    if noisy or within_later:
        notes.append(
            f"webrtc-echo-capacity: other processes used > {NOISY_PCT:g}% of a core at "
            f"{noisy or 'no'} peers; p99 within {ECHO_P99_MS:g} ms again at {within_later or 'no'}"
            " larger sizes: on a shared machine, run it again"
        )
    if saturated:
        notes.append(
            f"webrtc-echo-capacity: the generator's core was >= 90% busy at {saturated} peers: "
            "the latency there includes the generator's own queueing (an upper bound of the "
            "server's)"
        )
    return Result("webrtc-echo-capacity", "aiortc", sizes[-1] if sizes else 0, rows, notes)


# -- media echo ----------------------------------------------------------------------------------


def media_limit(harness: Harness) -> int:
    """The server's WEBRTC_MAX_MEDIA_PEERS (the operator's environment, else the default)."""
    given = harness.env.get("WEBRTC_MAX_MEDIA_PEERS")
    return int(given) if given else harness.settings.WEBRTC_MAX_MEDIA_PEERS


@scenario(
    "webrtc-media-capacity",
    "peers echoing 640x480 video: server CPU per peer, frames/s back, refusal past the limit",
)
async def webrtc_media_capacity(harness: Harness, options: Options) -> Result:
    """Adds media peers size after size (default 1, 2, ... up to WEBRTC_MAX_MEDIA_PEERS),
    measures `--duration` seconds at each, then offers one peer more than the limit: it must
    be refused (HTTP 503 `too_many_media_peers`) while the others keep their frame rate.
    Sizes over the limit are not measured (set WEBRTC_MAX_MEDIA_PEERS to measure them)."""
    assert harness.server is not None
    limit = media_limit(harness)
    sizes = sorted(options.sizes or range(1, min(limit, MEDIA_SIZES_MAX) + 1))
    wrtc.use_loopback()
    clip = await asyncio.to_thread(media.encode_clip)
    headers = await rt.bench_headers(harness)
    admin = await wrtc.admin_headers(harness)
    failures: Counter[str] = Counter()
    peers: list[wrtc.ClientPeer] = []
    counters: dict[RTCPeerConnection, media.FrameCounter] = {}

    def prepare(pc: RTCPeerConnection) -> None:
        pc.addTrack(media.ClipTrack(clip))
        pc.on("track", lambda track: counters.setdefault(pc, media.FrameCounter(track)))

    rows: list[Measurement] = []
    refusal: Measurement | None = None
    async with loadgen.session(harness.base_url, OPEN_CONCURRENCY + 2) as client:
        await wrtc.warm_up(harness, client, headers, admin, 1)
        try:
            for size in (size for size in sizes if size <= limit):  # past it: refused
                await wrtc.open_until(client, headers, peers, size, failures, 1, prepare)
                row = await _media_window(harness, peers, counters, options)
                row.errors += size - len(peers)  # refused or failed to connect
                row.details.update(failures=dict(failures))
                rows.append(row)
                harness.check_alive()
            if len(peers) == limit:
                status, body = await _offer_status(client, headers, prepare)
                row = await _media_window(harness, peers, counters, options)
                refusal = _refusal_row(row, status, body, rows[-1] if rows else None)
                rows.append(refusal)
        finally:
            await asyncio.gather(*(counter.stop() for counter in counters.values()))
            await wrtc.close_peers(peers)
        await wrtc.wait_peer_count(client, admin, 0, timeout=60.0)
    return _media_result(rows, limit, refusal)


async def _media_window(
    harness: Harness,
    peers: list[wrtc.ClientPeer],
    counters: dict[RTCPeerConnection, media.FrameCounter],
    options: Options,
) -> Measurement:
    """Wait for every peer's first echoed frame, then `--warmup`, then count frames and CPU
    over `--duration` seconds."""
    assert harness.server is not None
    mine = [counters.get(peer.pc) for peer in peers]
    deadline = time.perf_counter() + MEDIA_FIRST_FRAME
    while not all(c is not None and c.frames for c in mine) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        mine = [counters.get(peer.pc) for peer in peers]
    await asyncio.sleep(options.warmup)
    frames_before = [c.frames if c else 0 for c in mine]
    rss_before = system.process_rss_bytes(harness.server.pid)
    before = harness.snapshot()
    await asyncio.sleep(options.duration)
    after = harness.snapshot()
    rss = system.process_rss_bytes(harness.server.pid)
    frames = [(c.frames if c else 0) - b for c, b in zip(mine, frames_before, strict=True)]
    cpu = before.until(after)
    fps = [count / cpu.seconds for count in frames]
    size = len(peers)
    return Measurement(
        what=f"{size} peers echoing 640x480 VP8 video",
        unit="frames/s",
        operations=sum(frames),
        seconds=cpu.seconds,
        latency_ms=None,
        errors=sum(1 for count in frames if count == 0),  # peers that got nothing back
        **cpu.columns(),
        figure=f"{statistics.median(fps) if fps else 0:.1f} fps/peer",
        details={"peers": size, "fps_median": statistics.median(fps) if fps else 0.0,
                 "fps_min": min(fps, default=0.0), "server_cpu_pct_per_peer":
                 100 * cpu.server / cpu.seconds / size if size else 0.0,
                 "rss_mb": rss / MB,
                 # frames the server cannot encode in time pile up in memory: MiB/s
                 "rss_growth_mb_s": (rss - rss_before) / MB / cpu.seconds,
                 "services_cpu_s": cpu.services},
    )  # fmt: skip


async def _offer_status(
    client: aiohttp.ClientSession, headers: dict[str, str], prepare: Any
) -> tuple[int, dict[str, Any]]:
    """POST one more media offer; the HTTP status and the JSON body."""
    pc = RTCPeerConnection(configuration=RTCConfiguration(iceServers=[]))
    try:
        pc.createDataChannel("echo")
        prepare(pc)
        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer"}
        async with client.post(wrtc.OFFER_PATH, json=body, headers=headers) as answer:
            return answer.status, dict(await answer.json(content_type=None))
    finally:
        await pc.close()


def _refusal_row(
    row: Measurement, status: int, body: dict[str, Any], at_limit: Measurement | None
) -> Measurement:
    code = (body.get("error") or {}).get("code")
    fps_before = at_limit.details["fps_median"] if at_limit else 0.0
    kept = row.details["fps_median"] >= 0.9 * fps_before
    refused = status == 503 and code == "too_many_media_peers"
    row.what = f"one more media peer than the limit ({row.details['peers']} + 1)"
    row.figure = f"HTTP {status} {code}; others {row.details['fps_median']:.1f} fps"
    row.target = Target("refused (503), the others keep >= 90% of their fps", refused and kept)
    row.details.update(refused_status=status, refused_body=body)
    return row


def _media_result(rows: list[Measurement], limit: int, refusal: Measurement | None) -> Result:
    measured = [r for r in rows if r is not refusal]
    sizes = [int(r.details["peers"]) for r in measured]
    path = _plot_path("webrtc-media-capacity", sizes, [
        plot.Panel("CPU", "% of a core", {"server": [r.server_cpu_pct for r in measured],
                                          "generator": [r.client_cpu_pct for r in measured]}),
        plot.Panel("server CPU per media peer", "% of a core",
                   {"server": [r.details["server_cpu_pct_per_peer"] for r in measured]}),
        plot.Panel("echoed video received per peer", "frames/s", {
            "median": [r.details["fps_median"] for r in measured],
            "slowest peer": [r.details["fps_min"] for r in measured]}),
        plot.Panel("server memory (VmRSS)", "MiB",
                   {"server": [r.details["rss_mb"] for r in measured]}),
    ], log_x=False)  # fmt: skip
    per_peer = [r.details["server_cpu_pct_per_peer"] for r in measured if r.details["peers"]]
    notes = [
        f"webrtc-media-capacity: each peer sends a pre-encoded 640x480 VP8 clip at 30 fps "
        f"(~{media.VIDEO_BITRATE / 1e6:g} Mbps, no encoding on the generator) and counts the "
        f"frames the server echoes back (the server decodes and re-encodes each one); server "
        f"CPU per peer {', '.join(f'{p:.0f}%' for p in per_peer)} of a core at "
        f"{', '.join(map(str, sizes))} peers; WEBRTC_MAX_MEDIA_PEERS={limit}"
        + ("" if refusal else " (not reached: no refusal tried)")
        + f"; plot: {path}"
    ]
    return Result("webrtc-media-capacity", "aiortc", max(sizes, default=0), rows, notes)
