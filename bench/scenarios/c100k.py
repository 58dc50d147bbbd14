"""`c100k`: N authenticated WebSocket clients on ONE server process, each subscribed to its
own `user:<id>` channel and to one shared channel (namespace `crowd`: presence kept, no
join/leave events), measured at every size of `--sizes` (default 1,000 and 10,000; the full
run: `--sizes 1000,10000,100000 --duration 60`), then a table and a PNG of the cost curve
(bench/results/c100k.png). At each size, in order:

- storm: all N connect, authenticate (an access token each, checked as in production) and
  subscribe both channels, OPEN_CONCURRENCY at a time; server RSS before and after, / N;
- idle: IDLE_SECONDS of nothing but heartbeats (the crowd answers the server's pings) and
  presence renewal: the server's CPU;
- broadcast: one publication a second on the shared channel for --duration seconds; latency
  = sent -> the kernel's receive time at each subscriber's socket; the first publication
  alone is the "one publication to all N" row; every client must get every one, in order;
- direct: DIRECT_RATE direct messages a second (`message {to}`) to random users;
- wave: WAVE_SHARE of the clients vanish at once (RST), are sent a publication and a direct
  message each while away, then all come back at once subscribing from their cursors.

The generator is bench/crowd.py (one small object per connection, no transport); its CPU is
reported beside the server's. The descriptors needed (N plus FD_RESERVE, in the server and in
the generator) are checked first: a run that cannot have them stops with a clear message."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench import crowd_accounts, plot, system
from bench import crowd_phases as phases
from bench import crowd_report as report
from bench import realtime as rt
from bench.crowd import Client
from bench.harness import Harness
from bench.report import Measurement, Result, Target
from bench.scenarios import Options, ScenarioError, scenario
from bench.wsclient import WebSocket

DEFAULT_SIZES = (1_000, 10_000)
IDLE_SECONDS = 30.0  # one WS_HEARTBEAT: every connection is pinged once
DIRECT_RATE = 1000.0
DIRECT_SECONDS = 10.0
WAVE_SHARE = 0.10
IDLE_TARGET_PCT = 10.0
DIRECT_P99_TARGET_MS = 50.0


@dataclass
class Curve:
    """The figures of each size, for the plot."""

    sizes: list[int] = field(default_factory=list)
    values: dict[str, list[float | None]] = field(default_factory=dict)

    def add(self, size: int, **figures: float | None) -> None:
        self.sizes.append(size)
        for name, value in figures.items():
            self.values.setdefault(name, []).append(value)


@scenario("c100k", "N authenticated, subscribed WebSockets on one process (--sizes; 100,000)")
async def c100k(harness: Harness, options: Options) -> Result:
    if harness.server_processes != 1:
        raise ScenarioError("c100k measures one server process: run it without --server-processes")
    sizes = options.sizes or DEFAULT_SIZES
    notes = [report.check_descriptors(harness, sizes)]
    headers = await rt.bench_headers(harness)
    rows: list[Measurement] = []
    curve = Curve()
    for index, size in enumerate(sizes):
        if index:
            harness.restart_servers()  # each size measured by a fresh process
        talkers: list[WebSocket] = []
        try:
            for _ in range(3):  # a publisher and two senders of direct messages
                ws, _hello = await rt.open_ws(harness, headers)
                ws.on_message = lambda ws, opcode, payload: None  # acks: not needed
                talkers.append(ws)
            rows.extend(await _one_size(harness, options, size, talkers, curve, notes))
        finally:
            await rt.close_all(talkers)
    path = plot.curves("c100k", "connections (one server process)", curve.sizes, _panels(curve))
    notes.append(f"cost curve: {path}")
    return Result("c100k", "crowd", max(sizes), rows, notes, None, [])


async def _one_size(
    harness: Harness,
    options: Options,
    size: int,
    talkers: list[WebSocket],
    curve: Curve,
    notes: list[str],
) -> list[Measurement]:
    assert harness.server is not None
    pid = harness.server.pid
    tracker = phases.Tracker(f"{phases.SHARED_NAMESPACE}:c{size}-{secrets.token_hex(3)}")
    publisher, senders = talkers[0], talkers[1:]

    def make(index: int, account: crowd_accounts.Account) -> Client:
        return Client(index, account.user_id, account.token, tracker.on_message)

    async with crowd_accounts.clients(harness, size, make) as clients:
        await rt.wait_quiet(harness)
        rss_before = system.process_rss_bytes(pid)
        storm = await phases.storm(harness, clients, tracker.shared_channel)
        await rt.wait_quiet(harness)
        rss_at = system.process_rss_bytes(pid)
        idle = await phases.idle(harness, IDLE_SECONDS)
        cast = await phases.broadcast(harness, publisher, tracker, clients, options.duration)
        direct = await phases.direct(
            harness, senders, tracker, clients, DIRECT_RATE, min(DIRECT_SECONDS, options.duration)
        )
        wave = await phases.wave(harness, publisher, senders, tracker, clients, WAVE_SHARE)
        missed = sum(client.missed for client in clients)
        repeated = sum(client.duplicates for client in clients)
        dropped = sum(1 for client in clients if client.lost)
    per_conn = report.memory_per_connection(storm, rss_before, rss_at)
    first = phases.percentiles(tracker.first_ns)
    shared = phases.percentiles(tracker.shared_ns)
    dms = phases.percentiles(tracker.direct_ns)
    idle_pct = 100 * idle.server / idle.seconds
    at = f"N={size:,}"
    rows = [
        report.storm_row(at, "connect, auth, 2 subscribes", storm),
        report.memory_row(at, storm, rss_before, rss_at),
        Measurement(
            f"{at}: idle {IDLE_SECONDS:g} s (pings, presence)", "%", 0, idle.seconds, None,
            dropped, **idle.columns(), figure=f"{idle_pct:.1f}% of a core",
            target=Target(f"< {IDLE_TARGET_PCT:g}% of a core", idle_pct < IDLE_TARGET_PCT),
        ),
        report.first_row(at, size, tracker, cast),
        report.broadcast_row(at, tracker, cast, missed, repeated),
        Measurement(
            f"{at}: {DIRECT_RATE:,.0f} direct msgs/s to random users", "msgs/s", direct.delivered,
            direct.seconds, dms, direct.sent - direct.delivered, **direct.cpu.columns(),
            target=Target(f"p99 < {DIRECT_P99_TARGET_MS:g} ms, 0 lost",
                          dms is not None and dms.p99 < DIRECT_P99_TARGET_MS
                          and direct.sent == direct.delivered),
        ),
        Measurement(
            f"{at}: {WAVE_SHARE:.0%} reconnect wave ({wave.clients:,})", "conns/s", wave.clients,
            wave.seconds, None, sum(wave.failures.values()) + wave.missed, **wave.cpu.columns(),
            figure=f"{wave.seconds:.1f} s",
            target=Target("all recover, 0 missed", not wave.failures and wave.missed == 0),
            details={"failures": dict(wave.failures), "missed": wave.missed},
        ),
    ]  # fmt: skip
    why = Counter(client.lost_why for client in clients if client.lost)
    if why:
        notes.append(f"{at}: connections lost: {dict(why.most_common(5))}")
    if tracker.errors:
        notes.append(f"{at}: error messages received: {dict(tracker.errors)}")
    notes.append(
        f"{at}: generator CPU {storm.cpu.client:.1f} s in the storm, "
        f"{100 * idle.client / idle.seconds:.1f}% of a core idle; server RSS "
        f"{rss_before / 2**20:.0f} -> {rss_at / 2**20:.0f} MiB"
    )
    curve.add(
        size,
        storm_s=storm.seconds,
        kb_per_conn=per_conn / 1024,
        idle_pct=idle_pct,
        first_p99=None if first is None else first.p99,
        shared_p99=None if shared is None else shared.p99,
        direct_p99=None if dms is None else dms.p99,
        wave_s=wave.seconds,
        us_per_delivery=1e6 * cast.cpu.server / cast.delivered if cast.delivered else None,
    )
    return rows


def _panels(curve: Curve) -> list[plot.Panel]:
    v: dict[str, Any] = curve.values
    return [
        plot.Panel("connection storm (all N connected and subscribed)", "s",
                   {"storm": v["storm_s"]}),
        plot.Panel("server memory per connection", "KB", {"RSS / N": v["kb_per_conn"]}),
        plot.Panel("idle server CPU (pings, presence)", "% of a core", {"idle": v["idle_pct"]}),
        plot.Panel("latency p99", "ms", {"first publication -> all": v["first_p99"],
                                         "1 pub/s -> all": v["shared_p99"],
                                         "direct messages": v["direct_p99"]}),
        plot.Panel("10% reconnect wave", "s", {"all back": v["wave_s"]}),
        plot.Panel("server CPU per delivery (broadcast)", "µs", {"per delivery":
                                                                  v["us_per_delivery"]}),
    ]  # fmt: skip
