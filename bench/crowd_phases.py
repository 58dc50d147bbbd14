"""The phases of the c100k scenario at one size N, each returning what it measured: the
connection storm, idleness, publications to everyone, direct messages, a reconnect wave.
bench/crowd.py is the client; bench/scenarios/c100k.py runs the phases and reports."""

from __future__ import annotations

import asyncio
import random
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import realtime as rt
from bench.crowd import Client
from bench.harness import Harness
from bench.report import Percentiles
from bench.system import CpuDelta
from bench.wsclient import WebSocket

SHARED_NAMESPACE = "crowd"  # subscribe/publish: users; presence kept; no join/leave events
OPEN_CONCURRENCY = 500  # connections being opened at once (the storm, the wave)
DIRECT_TICK = 0.01  # direct messages are sent in batches every 10 ms
DRAIN = 30.0  # seconds to wait for the last deliveries of a phase


async def _until(done: Callable[[], bool], timeout: float = DRAIN) -> None:
    """Poll `done` (counters the crowd's readers update) until true or `timeout`."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:  # noqa: ASYNC110 (counters, no event)
        await asyncio.sleep(0.1)


def percentiles(latencies_ns: Sequence[int]) -> Percentiles | None:
    return Percentiles.of_ms([value / 1e6 for value in latencies_ns])


@dataclass
class Tracker:
    """What the crowd received, by kind: `shared` (the shared channel's publications, by
    their `seq`) and `direct` (direct messages, by their text), each with its send time."""

    shared_channel: str
    sent_shared: dict[int, int] = field(default_factory=dict)
    sent_direct: dict[str, int] = field(default_factory=dict)
    shared_ns: array[int] = field(default_factory=lambda: array("q"))
    first_ns: array[int] = field(default_factory=lambda: array("q"))  # the first publication
    direct_ns: array[int] = field(default_factory=lambda: array("q"))
    shared_arrivals: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def on_message(self, client: Client, message: dict[str, Any], received: int) -> None:
        kind = message.get("type")
        if kind == "publication":
            data = message.get("data")
            if message["channel"] == self.shared_channel and isinstance(data, dict):
                seq = data.get("seq")
                sent = self.sent_shared.get(seq) if isinstance(seq, int) else None
                if isinstance(seq, int) and sent is not None:
                    self.shared_arrivals[seq] += 1
                    self.shared_ns.append(received - sent)
                    if seq == 0:
                        self.first_ns.append(received - sent)
            elif isinstance(data, dict) and data.get("kind") == "direct":
                sent = self.sent_direct.pop(str(data.get("text")), None)
                if sent is not None:
                    self.direct_ns.append(received - sent)
        elif kind == "error":
            self.errors[str(message.get("code"))] += 1


@dataclass
class Storm:
    clients: int
    seconds: float
    failures: Counter[str]
    cpu: CpuDelta

    @property
    def opened(self) -> int:
        return self.clients - sum(self.failures.values())


async def storm(harness: Harness, clients: Sequence[Client], shared: str) -> Storm:
    """Connect, authenticate and subscribe every client (its user:<id> and `shared`)."""
    failures: Counter[str] = Counter()

    async def join(client: Client) -> None:
        try:
            await client.join(rt.HOST, harness.port, [f"user:{client.user_id}", shared])
        except Exception as error:  # counted, reported; the rest go on
            failures[f"{type(error).__name__}: {str(error)[:80]}"] += 1
            client.drop()

    before = harness.snapshot()
    started = time.perf_counter()
    await rt.gather_limited(len(clients), lambda i: join(clients[i]), OPEN_CONCURRENCY)
    seconds = time.perf_counter() - started
    return Storm(len(clients), seconds, failures, before.until(harness.snapshot()))


@dataclass
class Broadcast:
    published: int
    delivered: int
    expected: int
    seconds: float
    cpu: CpuDelta


async def broadcast(
    harness: Harness,
    publisher: WebSocket,
    tracker: Tracker,
    clients: Sequence[Client],
    seconds: float,
) -> Broadcast:
    """One publication per second on the shared channel for `seconds` (the first measured
    alone too: tracker.first_ns), then wait until every live client has every one."""
    live = [client for client in clients if client.sock is not None]
    count = max(1, round(seconds))
    loop = asyncio.get_running_loop()
    before = harness.snapshot()
    start = loop.time()
    for seq in range(count):
        await asyncio.sleep(max(0.0, start + seq - loop.time()))
        tracker.sent_shared[seq] = time.perf_counter_ns()
        publisher.send_json({"type": "publish", "channel": tracker.shared_channel,
                             "data": {"seq": seq}})  # fmt: skip
    await _until(lambda: all(tracker.shared_arrivals[s] >= len(live) for s in range(count)))
    cpu = before.until(harness.snapshot())
    delivered = sum(tracker.shared_arrivals[seq] for seq in range(count))
    return Broadcast(count, delivered, count * len(live), loop.time() - start, cpu)


@dataclass
class Direct:
    sent: int
    delivered: int
    seconds: float
    cpu: CpuDelta


async def direct(
    harness: Harness,
    senders: Sequence[WebSocket],
    tracker: Tracker,
    clients: Sequence[Client],
    rate: float,
    seconds: float,
) -> Direct:
    """`rate` direct messages a second to random clients' users for `seconds`."""
    live = [client for client in clients if client.sock is not None]
    per_tick = max(1, round(rate * DIRECT_TICK))
    ticks = round(seconds / DIRECT_TICK)
    loop = asyncio.get_running_loop()
    pick = random.Random(7)
    sent = 0
    before = harness.snapshot()
    start = loop.time()
    for tick in range(ticks):
        await asyncio.sleep(max(0.0, start + tick * DIRECT_TICK - loop.time()))
        for _ in range(per_tick):
            target = pick.choice(live)
            text = f"dm{sent}"
            tracker.sent_direct[text] = time.perf_counter_ns()
            senders[sent % len(senders)].send_json(
                {"type": "message", "to": target.user_id, "text": text}
            )
            sent += 1
    await _until(lambda: not tracker.sent_direct)
    cpu = before.until(harness.snapshot())
    return Direct(sent, sent - len(tracker.sent_direct), loop.time() - start, cpu)


@dataclass
class Wave:
    clients: int
    seconds: float
    failures: Counter[str]
    missed: int
    cpu: CpuDelta


async def wave(
    harness: Harness,
    publisher: WebSocket,
    senders: Sequence[WebSocket],
    tracker: Tracker,
    clients: Sequence[Client],
    share: float,
) -> Wave:
    """Drop `share` of the clients at once (RST, as a vanished network), publish on the shared
    channel and send each of them a direct message while they are away, then bring them all
    back at once, subscribing from their cursors: each must recover both channels."""
    live = [client for client in clients if client.sock is not None]
    away = random.Random(11).sample(live, max(1, round(len(live) * share)))
    user_offsets = {client.index: client.last.get(f"user:{client.user_id}", 0) for client in away}
    for client in away:
        client.drop(reset=True)
    before = harness.snapshot()
    for _ in range(2):
        publisher.send_json({"type": "publish", "channel": tracker.shared_channel,
                             "data": {"away": True}})  # fmt: skip
    for i, client in enumerate(away):
        senders[i % len(senders)].send_json(
            {"type": "message", "to": client.user_id, "text": f"away{i}"}
        )
    await asyncio.sleep(0.5)  # the server has them in the history
    storm_again = await storm(harness, away, tracker.shared_channel)
    missed = sum(client.missed for client in away)
    # each came back with the direct message sent while it was away
    missed += sum(
        1
        for client in away
        if client.last.get(f"user:{client.user_id}", 0) <= user_offsets[client.index]
    )
    cpu = before.until(harness.snapshot())
    return Wave(len(away), storm_again.seconds, storm_again.failures, missed, cpu)


async def idle(harness: Harness, seconds: float) -> CpuDelta:
    """The CPU of `seconds` of nothing but upkeep: heartbeats (the crowd answers the
    server's pings), presence renewal, stats."""
    before = harness.snapshot()
    await asyncio.sleep(seconds)
    return before.until(harness.snapshot())
