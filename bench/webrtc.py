"""Shared pieces of the WebRTC scenarios: aiortc client peers on loopback connected through
POST /realtime/webrtc/offer (timed step by step), an admin account for the server's own peer
list (GET /realtime/webrtc/peers), the echo pump that streams 16 KiB messages on the `echo`
data channel within a bounded window, the same pump in JavaScript for chromium, and the CPU
of the browser's processes (children of this process, so not in getrusage until reaped)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aioice.ice
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from bench import accounts, loadgen, system
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
    client: aiohttp.ClientSession, headers: dict[str, str], timeout: float = CONNECT_TIMEOUT
) -> ClientPeer:
    """A new peer with a data channel `echo`, connected to the server peer; timed from
    creating the offer to the channel being open."""
    pc = RTCPeerConnection(configuration=RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("echo")
    opened: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    channel.on("open", lambda: opened.done() or opened.set_result(_perf()))
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
    client: aiohttp.ClientSession, headers: dict[str, str], failures: Counter[str]
) -> ClientPeer | None:
    """connect(), or None with the failure counted by name."""
    try:
        return await connect(client, headers)
    except Exception as error:  # counted in the row's errors, named in its details
        failures[f"{type(error).__name__}: {str(error)[:80]}"] += 1
        return None


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


# -- the echo pump (aiortc) ---------------------------------------------------------------------


class EchoPump:
    """Sends MESSAGE_SIZE-byte messages on the `echo` channel while bufferedAmount is at most
    HIGH_WATER (resuming on `bufferedamountlow` at LOW_WATER) and fewer than WINDOW bytes are
    unechoed, so neither the client's nor the server's send queue grows without bound."""

    def __init__(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        self.payload = os.urandom(MESSAGE_SIZE)
        self.sent = 0
        self.echoed = 0
        self.wrong = 0  # echoes that differ from what was sent
        self.running = False
        self.progress = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        channel.bufferedAmountLowThreshold = LOW_WATER
        channel.on("bufferedamountlow", self.progress.set)
        channel.on("message", self.on_message)

    def on_message(self, message: bytes | str) -> None:
        if message != self.payload:
            self.wrong += 1
        self.echoed += len(message)
        if self.sent - self.echoed <= WINDOW - MESSAGE_SIZE:
            self.progress.set()

    def start(self) -> None:
        self.running = True
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        channel, payload = self.channel, self.payload
        while self.running:
            if (
                channel.bufferedAmount > HIGH_WATER
                or self.sent - self.echoed > WINDOW - MESSAGE_SIZE
            ):
                self.progress.clear()
                await self.progress.wait()
                continue
            channel.send(payload)
            self.sent += MESSAGE_SIZE

    def mark(self) -> Mark:
        transport = self.channel.transport.transport  # the DTLS transport under SCTP
        stats = next(iter(transport._get_stats().values()))  # what the server's stats use
        return Mark(_perf(), self.sent, self.echoed, stats.packetsSent, stats.packetsReceived)

    async def stop(self, timeout: float = 30.0) -> bool:
        """Stop sending; True when every message sent came back."""
        self.running = False
        self.progress.set()
        if self.task is not None:
            await self.task
        deadline = time.monotonic() + timeout
        while self.echoed < self.sent and time.monotonic() < deadline:
            self.progress.clear()
            try:
                await asyncio.wait_for(self.progress.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
        return self.echoed == self.sent


# -- the same in chromium -------------------------------------------------------------------------

BROWSER_SETUP = """
async ({token, offerPath, size, high, low, windowBytes, timeoutMs}) => {
  const started = performance.now();
  const pc = new RTCPeerConnection({iceServers: []});
  const channel = pc.createDataChannel("echo");
  channel.binaryType = "arraybuffer";
  const opened = new Promise((resolve) => channel.addEventListener("open", resolve));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
  const offered = performance.now();
  const answer = await fetch(offerPath, {
    method: "POST",
    headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    body: JSON.stringify({sdp: pc.localDescription.sdp, type: "offer"}),
  });
  if (answer.status !== 201) throw new Error("offer: HTTP " + answer.status + " " +
                                             await answer.text());
  const reply = await answer.json();
  const answered = performance.now();
  await pc.setRemoteDescription({type: "answer", sdp: reply.sdp});
  await Promise.race([opened, new Promise((_, reject) =>
    setTimeout(() => reject(new Error("data channel not open")), timeoutMs))]);
  const payload = new Uint8Array(size);
  crypto.getRandomValues(payload);  // at most 65,536 bytes at a time
  const state = {sent: 0, echoed: 0, wrong: 0, running: false};
  const pump = () => {
    while (state.running && channel.bufferedAmount <= high &&
           state.sent - state.echoed <= windowBytes - size) {
      channel.send(payload);
      state.sent += size;
    }
  };
  channel.bufferedAmountLowThreshold = low;
  channel.addEventListener("bufferedamountlow", pump);
  channel.addEventListener("message", (event) => {
    const data = event.data;
    if (!(data instanceof ArrayBuffer) || data.byteLength !== size ||
        new Uint8Array(data, 0, 16).some((b, i) => b !== payload[i])) state.wrong += 1;
    state.echoed += typeof data === "string" ? data.length : data.byteLength;
    pump();
  });
  window.bench = {
    pc, channel, state,
    start() { state.running = true; pump(); },
    async mark() {
      const at = performance.now() / 1000, sent = state.sent, echoed = state.echoed;
      let packetsOut = 0, packetsIn = 0;
      for (const s of (await pc.getStats()).values()) {
        if (s.type === "transport") { packetsOut += s.packetsSent; packetsIn += s.packetsReceived; }
      }
      return {at, sent, echoed, packetsOut, packetsIn};
    },
    async stop(waitMs) {
      state.running = false;
      const until = performance.now() + waitMs;
      while (state.echoed < state.sent && performance.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return {sent: state.sent, echoed: state.echoed, wrong: state.wrong};
    },
  };
  return {peerId: reply.peer_id, offerMs: offered - started, postMs: answered - offered,
          openMs: performance.now() - answered};
}
"""


def descendants(root: int, exclude: set[int]) -> list[int]:
    """Every process below `root` except the subtrees of `exclude` (the server, the worker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    stack = [pid for pid in children.get(root, []) if pid not in exclude]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(child for child in children.get(pid, []) if child not in exclude)
    return found


def browser_cpu_seconds(harness: Harness) -> dict[int, float]:
    """pid -> CPU seconds of this process's children other than the server and worker: the
    Playwright driver and chromium's processes."""
    exclude = {child.pid for child in (harness.server, harness.worker) if child is not None}
    seconds: dict[int, float] = {}
    for pid in descendants(os.getpid(), exclude):
        try:
            seconds[pid] = system.process_cpu_seconds(pid)
        except OSError:
            continue
    return seconds


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def affinity_of(pids: list[int]) -> set[int]:
    cpus: set[int] = set()
    for pid in pids:
        try:
            cpus |= os.sched_getaffinity(pid)
        except OSError:
            continue
    return cpus
