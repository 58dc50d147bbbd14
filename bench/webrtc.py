"""The client side of the WebRTC scenarios: aiortc peers on loopback connected through
POST /realtime/webrtc/offer (timed step by step), an admin account for the server's own peer
list (GET /realtime/webrtc/peers), and a measured transfer (counters at both ends and CPU over
a window). bench/webrtc_media.py holds what the peers send and count (the echo pumps, the
pre-encoded video), bench/webrtc_browser.py the same echo pump in chromium."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aioice.ice
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from bench import accounts, loadgen
from bench import realtime as rt
from bench.harness import Harness
from bench.report import Percentiles
from bench.system import CpuDelta

OFFER_PATH = "/realtime/webrtc/offer"
PEERS_PATH = "/realtime/webrtc/peers"
LOOPBACK = ["127.0.0.1"]
CONNECT_TIMEOUT = 20.0
MESSAGE_SIZE = 16 * 1024  # the size browsers interoperate with; aiortc cuts ~1,200-byte chunks
HIGH_WATER = 1024 * 1024  # stop sending while bufferedAmount is above this ...
LOW_WATER = 256 * 1024  # ... until the `bufferedamountlow` event at this threshold
WINDOW = 4 * 1024 * 1024  # and keep at most this many bytes sent but not yet echoed back
MB = 1024 * 1024
_perf = time.perf_counter


def use_loopback() -> None:
    """aioice never gathers 127.0.0.1: the generator's peers gather it alone, as the server
    does with ICE_HOST_ADDRESSES=127.0.0.1 (process-wide, like the server's own setting)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(LOOPBACK)


@dataclass
class ClientPeer:
    """An aiortc peer with an open `echo` data channel and how long each step took (ms)."""

    pc: RTCPeerConnection
    channel: RTCDataChannel
    peer_id: str
    offer_ms: float  # createOffer + setLocalDescription (candidate gathering included)
    post_ms: float  # POST /realtime/webrtc/offer: the server peer's answer
    open_ms: float  # setRemoteDescription until the channel is open: ICE, DTLS, SCTP, DCEP

    @property
    def total_ms(self) -> float:
        return self.offer_ms + self.post_ms + self.open_ms


async def connect(
    client: aiohttp.ClientSession,
    headers: dict[str, str],
    timeout: float = CONNECT_TIMEOUT,
    prepare: Callable[[RTCPeerConnection], None] | None = None,
) -> ClientPeer:
    """A new peer with a data channel `echo` (and whatever `prepare` adds before the offer:
    tracks), connected to the server peer; timed from creating the offer to the channel
    being open."""
    pc = RTCPeerConnection(configuration=RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("echo")
    if prepare is not None:
        prepare(pc)
    opened: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def on_open() -> None:
        if not opened.done():
            opened.set_result(_perf())

    channel.on("open", on_open)
    try:
        started = _perf()
        await pc.setLocalDescription(await pc.createOffer())
        offered = _perf()
        body = {"sdp": pc.localDescription.sdp, "type": "offer"}
        async with client.post(OFFER_PATH, json=body, headers=headers) as answer:
            if answer.status != 201:
                raise RuntimeError(f"POST {OFFER_PATH}: HTTP {answer.status} {await answer.text()}")
            reply = await answer.json()
        answered = _perf()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        open_at = await asyncio.wait_for(opened, timeout)
    except BaseException:
        await pc.close()
        raise
    return ClientPeer(
        pc,
        channel,
        str(reply["peer_id"]),
        offer_ms=1000 * (offered - started),
        post_ms=1000 * (answered - offered),
        open_ms=1000 * (open_at - answered),
    )


async def close_peers(peers: list[ClientPeer]) -> None:
    await asyncio.gather(*(peer.pc.close() for peer in peers), return_exceptions=True)


def latency(values: list[float]) -> Percentiles | None:
    """p50, p95 and, in the p99 column, the maximum (nearest rank: the same for 50 values)."""
    found = Percentiles.of_ms(values)
    return None if found is None else Percentiles(found.p50, found.p95, max(values))


async def try_connect(
    client: aiohttp.ClientSession,
    headers: dict[str, str],
    failures: Counter[str],
    prepare: Callable[[RTCPeerConnection], None] | None = None,
) -> ClientPeer | None:
    """connect(), or None with the failure counted by name."""
    try:
        return await connect(client, headers, prepare=prepare)
    except Exception as error:  # counted in the row's errors, named in its details
        failures[f"{type(error).__name__}: {str(error)[:80]}"] += 1
        return None


async def open_until(
    client: aiohttp.ClientSession,
    headers: dict[str, str],
    peers: list[ClientPeer],
    size: int,
    failures: Counter[str],
    concurrency: int,
    prepare: Callable[[RTCPeerConnection], None] | None = None,
) -> float:
    """Connect `concurrency` peers at a time until `peers` holds `size` of them (one attempt
    each: failures are counted, not retried); the seconds it took."""
    started = _perf()
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            if peer := await try_connect(client, headers, failures, prepare):
                peers.append(peer)

    await asyncio.gather(*(one() for _ in range(size - len(peers))))
    return _perf() - started


def step_medians(peers: list[ClientPeer], server: list[dict[str, Any]]) -> dict[str, float]:
    """Median ms of each connection step, and of the server's own creation->connected."""

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else math.nan

    return {
        "offer_ms": median([p.offer_ms for p in peers]),
        "post_ms": median([p.post_ms for p in peers]),
        "open_ms": median([p.open_ms for p in peers]),
        "server_ms": median([1000 * p["seconds_to_connect"] for p in server
                             if p["seconds_to_connect"] is not None]),
    }  # fmt: skip


async def warm_up(
    harness: Harness, client: aiohttp.ClientSession, headers: dict[str, str], admin: Any, n: int
) -> None:
    """Connect and close `n` peers (the first peer of a process pays for imports and caches),
    then wait until the server has forgotten them and is idle."""
    warm = [p for _ in range(n) if (p := await try_connect(client, headers, Counter()))]
    await close_peers(warm)
    await wait_peer_count(client, admin, 0)
    await rt.wait_quiet(harness)


# -- the server's view: an admin account and GET /realtime/webrtc/peers ------------------------

_admins: dict[int, dict[str, str]] = {}


async def admin_headers(harness: Harness) -> dict[str, str]:
    """A logged-in superuser of the benchmark database, one per harness (the WebRTC
    scenarios read the server's peer list with it)."""
    if id(harness) not in _admins:
        async with loadgen.session(harness.base_url, 2) as client:
            _admins[id(harness)] = await accounts.bench_admin_headers(harness, client)
    return _admins[id(harness)]


async def server_peers(
    client: aiohttp.ClientSession, admin: dict[str, str]
) -> list[dict[str, Any]]:
    async with client.get(PEERS_PATH, headers=admin) as answer:
        if answer.status != 200:
            raise RuntimeError(f"GET {PEERS_PATH}: HTTP {answer.status} {await answer.text()}")
        return list((await answer.json())["peers"])


async def wait_peer_count(
    client: aiohttp.ClientSession, admin: dict[str, str], at_most: int, timeout: float = 15.0
) -> tuple[int, float]:
    """Poll the server's peer list until it holds at most `at_most` peers; (count, seconds)."""
    started = time.monotonic()
    count = len(await server_peers(client, admin))
    while count > at_most and time.monotonic() - started < timeout:
        await asyncio.sleep(0.25)
        count = len(await server_peers(client, admin))
    return count, time.monotonic() - started


@dataclass(frozen=True)
class Mark:
    """Counters at one moment of a transfer: payload bytes, the client's transport packets
    and the server's transport bytes (GET /realtime/webrtc/peers)."""

    at: float  # seconds (perf_counter here, performance.now()/1000 in the browser)
    sent: int
    echoed: int
    packets_out: int = 0  # the client's DTLS transport
    packets_in: int = 0
    server_received: int = 0
    server_sent: int = 0


async def server_bytes(
    client: aiohttp.ClientSession, admin: dict[str, str], peer_id: str
) -> tuple[int, int]:
    """(bytes_received, bytes_sent) of the server peer's DTLS transport."""
    for peer in await server_peers(client, admin):
        if peer["peer_id"] == peer_id:
            return int(peer.get("bytes_received") or 0), int(peer.get("bytes_sent") or 0)
    raise RuntimeError(f"the server does not list peer {peer_id}")


# -- a measured transfer -------------------------------------------------------------------------


@dataclass
class Transfer:
    """The measured window of a streaming echo: counters at both ends, CPU, integrity."""

    first: Mark
    last: Mark
    cpu: CpuDelta
    drained: bool = False  # every message sent came back
    wrong: int = 0  # echoes that differ from what was sent
    extra_client_cpu_s: float = 0.0  # the browser's processes
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.last.at - self.first.at

    def rate(self, name: str) -> float:
        """MB/s of one counter of Mark over the window."""
        done = getattr(self.last, name) - getattr(self.first, name)
        return done / MB / self.seconds if self.seconds > 0 else 0.0

    def per_second(self, name: str) -> float:
        done = getattr(self.last, name) - getattr(self.first, name)
        return done / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_cpu_ms_per_mb(self) -> float:
        echoed_mb = (self.last.echoed - self.first.echoed) / MB
        return 1000 * self.cpu.server / echoed_mb if echoed_mb > 0 else 0.0


async def measure(
    harness: Harness,
    warmup: float,
    duration: float,
    mark: Callable[[], Awaitable[Mark]],
    server_counters: Callable[[], Awaitable[tuple[int, int]]],
    extra_cpu: Callable[[], dict[int, float]] = dict,
) -> Transfer:
    """With the pump running: `warmup` seconds, then `duration` measured seconds with CPU
    snapshots, client marks and the server's byte counters at both ends."""
    await asyncio.sleep(warmup)
    marks: list[Mark] = []
    extra_before = extra_cpu()
    before = harness.snapshot()
    for pause in (0.0, duration):
        await asyncio.sleep(pause)
        found = await mark()
        received, sent = await server_counters()
        marks.append(dataclasses.replace(found, server_received=received, server_sent=sent))
    after = harness.snapshot()
    extra = cpu_spent(extra_before, extra_cpu())
    return Transfer(marks[0], marks[1], before.until(after), extra_client_cpu_s=extra)


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings of pid -> seconds (a new pid counts from zero)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
