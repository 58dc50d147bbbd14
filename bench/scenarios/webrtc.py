"""WebRTC scenarios against the server peer (bench/webrtc.py, bench/webrtc_media.py and
bench/webrtc_browser.py hold the client side): `webrtc-connect` (50 aiortc peers connected one
after another through POST /realtime/webrtc/offer, offer -> data channel open),
`webrtc-throughput-aiortc` and `webrtc-throughput-chromium` (the `echo` data channel
streaming 16 KiB messages); bench/scenarios/webrtc_idle.py has `webrtc-idle`,
bench/scenarios/webrtc_capacity.py the echo and media capacity scenarios."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench import loadgen
from bench import realtime as rt
from bench import webrtc as wrtc
from bench.harness import Harness
from bench.report import Measurement, Result, Target
from bench.scenarios import Options, scenario
from bench.webrtc_browser import BROWSER_SETUP, affinity_of, browser_cpu_seconds
from bench.webrtc_media import EchoPump

CONNECT_PEERS = 50
CONNECT_WARMUP_PEERS = 3
CONNECT_P95_MS = 500.0
THROUGHPUT_MB_S = 5.0
MB = wrtc.MB


@scenario("webrtc-connect", "WebRTC: 50 aiortc data-channel peers one after another, offer->open")
async def webrtc_connect(harness: Harness, options: Options) -> Result:
    wrtc.use_loopback()
    headers = await rt.bench_headers(harness)
    admin = await wrtc.admin_headers(harness)
    failures: Counter[str] = Counter()
    peers: list[wrtc.ClientPeer] = []
    async with loadgen.session(harness.base_url, 2) as client:
        await wrtc.warm_up(harness, client, headers, admin, CONNECT_WARMUP_PEERS)
        before = harness.snapshot()
        try:
            for _ in range(CONNECT_PEERS):
                if peer := await wrtc.try_connect(client, headers, failures):
                    peers.append(peer)
            after = harness.snapshot()
            listed = await wrtc.server_peers(client, admin)
        finally:
            await wrtc.close_peers(peers)
        left, waited = await wrtc.wait_peer_count(client, admin, 0)
    cpu = before.until(after)
    latency = wrtc.latency([p.total_ms for p in peers])
    connected = [p for p in listed if p["state"] == "connected"]
    steps = wrtc.step_medians(peers, connected)
    errors = sum(failures.values())
    p95 = latency.p95 if latency else float("inf")
    row = Measurement(
        what=f"offer -> data channel open, {CONNECT_PEERS} peers in sequence",
        unit="connects/s",
        operations=len(peers),
        seconds=cpu.seconds,
        latency_ms=latency,
        errors=errors,
        **cpu.columns(),
        target=Target(f"p95 < {CONNECT_P95_MS:g} ms", p95 < CONNECT_P95_MS and errors == 0),
        details={**steps, "server_peers_connected": len(connected), "server_peers_left": left,
                 "failures": dict(failures), "services_cpu_s": cpu.services},
    )  # fmt: skip
    notes = [
        f"webrtc-connect: p99 column = max of {CONNECT_PEERS}; medians per step: createOffer + "
        f"setLocalDescription {steps['offer_ms']:.1f} ms, POST offer (the server peer answers) "
        f"{steps['post_ms']:.1f} ms, answer -> channel open (ICE, DTLS, SCTP, DCEP) "
        f"{steps['open_ms']:.1f} ms; the server counts {steps['server_ms']:.0f} ms from creating "
        f"its peer to 'connected'; {len(connected)} server peers connected at the end, {left} "
        f"left {waited:.1f}s after the clients closed; srv CPU ms/1k = ms per 1,000 connects"
    ]
    return Result("webrtc-connect", "aiortc", CONNECT_PEERS, [row], notes, None, cpu.cores_busy_pct)


# -- throughput --------------------------------------------------------------------------------


def _throughput_rows(t: wrtc.Transfer) -> list[Measurement]:
    cpu = t.cpu
    echo = t.rate("echoed")
    errors = t.wrong + (0 if t.drained else 1)
    common: dict[str, Any] = {
        "seconds": t.seconds,
        "latency_ms": None,
        "server_cpu_s": cpu.server,
        "client_cpu_s": cpu.client + t.extra_client_cpu_s,
        "other_cpu_s": max(0.0, cpu.other - t.extra_client_cpu_s),
        "cpu_window_s": cpu.seconds,
    }
    packets_in, packets_out = t.per_second("packets_out"), t.per_second("packets_in")
    t.details.update(
        payload_sent_mb_s=t.rate("sent"),
        server_cpu_ms_per_mb=t.server_cpu_ms_per_mb,
        server_packets_in_per_s=packets_in,  # what the client sent, on loopback
        server_packets_out_per_s=packets_out,
        server_bytes_per_packet_in=t.per_second("server_received") / max(1.0, packets_in),
        server_bytes_per_packet_out=t.per_second("server_sent") / max(1.0, packets_out),
        drained=t.drained,
        wrong_echoes=t.wrong,
        services_cpu_s=cpu.services,
    )
    target = f">= {THROUGHPUT_MB_S:g} MB/s each way"
    return [
        Measurement(
            what=f"echo, {wrtc.MESSAGE_SIZE // 1024} KiB msgs: payload each way at once",
            unit="msgs/s",
            operations=(t.last.echoed - t.first.echoed) // wrtc.MESSAGE_SIZE,
            errors=errors,
            figure=f"{echo:,.2f} MB/s",
            target=Target(target, echo >= THROUGHPUT_MB_S and errors == 0),
            details=t.details,
            **common,
        ),
        *(
            Measurement(
                what=what,
                unit="MB/s",
                operations=0,
                errors=0,
                figure=f"{t.rate(counter):,.2f} MB/s",
                **common,
            )
            for what, counter in (
                ("client->server: server transport bytes in", "server_received"),
                ("server->client: server transport bytes out", "server_sent"),
            )
        ),
    ]


def _throughput_note(name: str, t: wrtc.Transfer, client: str) -> str:
    d = t.details
    return (
        f"{name}: {client} streams {wrtc.MESSAGE_SIZE // 1024} KiB binary messages on `echo` "
        f"(bufferedAmount <= {wrtc.HIGH_WATER // 1024} KiB, resumed at bufferedamountlow "
        f"{wrtc.LOW_WATER // 1024} KiB; <= {wrtc.WINDOW // MB} MiB sent but not yet echoed); the "
        f"server peer echoes each one, so the payload figure flows both ways at once (MB = "
        f"2^20 bytes). Transport rows: the server peer's DTLS byte counters (GET "
        f"/realtime/webrtc/peers), SCTP/DTLS headers and SACKs included: "
        f"{d['server_packets_in_per_s']:,.0f} packets/s in ({d['server_bytes_per_packet_in']:.0f} "
        f"B avg), {d['server_packets_out_per_s']:,.0f} out ({d['server_bytes_per_packet_out']:.0f}"
        f" B avg). Server CPU {t.server_cpu_ms_per_mb:.0f} ms per echoed MB (srv CPU ms/1k: per "
        f"1,000 messages); connected in {d['connect_ms']:.0f} ms; every echo "
        + ("came back intact" if t.drained and not t.wrong else "did NOT come back intact")
    )


@scenario("webrtc-throughput-aiortc", "WebRTC data channel echo throughput, one aiortc client")
async def webrtc_throughput_aiortc(harness: Harness, options: Options) -> Result:
    wrtc.use_loopback()
    headers = await rt.bench_headers(harness)
    admin = await wrtc.admin_headers(harness)
    async with loadgen.session(harness.base_url, 2) as client:
        await wrtc.warm_up(harness, client, headers, admin, 1)
        peer = await wrtc.connect(client, headers)
        pump = EchoPump(peer.channel)
        try:

            async def mark() -> wrtc.Mark:
                return pump.mark()

            pump.start()
            transfer = await wrtc.measure(
                harness, options.warmup, options.duration, mark,
                lambda: wrtc.server_bytes(client, admin, peer.peer_id),
            )  # fmt: skip
            transfer.drained = await pump.stop()
        finally:
            await wrtc.close_peers([peer])
        await wrtc.wait_peer_count(client, admin, 0)
    transfer.wrong = pump.wrong
    transfer.details["connect_ms"] = peer.total_ms
    rows = _throughput_rows(transfer)
    notes = [_throughput_note("webrtc-throughput-aiortc", transfer, "one aiortc peer")]
    cores = transfer.cpu.cores_busy_pct
    return Result("webrtc-throughput-aiortc", "aiortc", 1, rows, notes, None, cores)


@scenario("webrtc-throughput-chromium", "WebRTC data channel echo throughput, headless chromium")
async def webrtc_throughput_chromium(harness: Harness, options: Options) -> Result:
    from playwright.async_api import async_playwright  # only this scenario needs them

    from tests.support.browser import CHROMIUM, FLAGS

    headers = await rt.bench_headers(harness)
    admin = await wrtc.admin_headers(harness)
    setup = {"token": headers["Authorization"].removeprefix("Bearer "),
             "offerPath": wrtc.OFFER_PATH, "size": wrtc.MESSAGE_SIZE, "high": wrtc.HIGH_WATER,
             "low": wrtc.LOW_WATER, "windowBytes": wrtc.WINDOW,
             "timeoutMs": 1000 * wrtc.CONNECT_TIMEOUT}  # fmt: skip
    async with loadgen.session(harness.base_url, 2) as client, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=FLAGS, ignore_default_args=["--headless"]
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{harness.base_url}/health/live")  # the server's origin
            connected = await page.evaluate(BROWSER_SETUP, setup)
            await rt.wait_quiet(harness)
            browser_pids = list(browser_cpu_seconds(harness))
            browser_cpus = sorted(affinity_of(browser_pids))

            async def mark() -> wrtc.Mark:
                m = await page.evaluate("() => window.bench.mark()")
                return wrtc.Mark(float(m["at"]), int(m["sent"]), int(m["echoed"]),
                                 int(m["packetsOut"]), int(m["packetsIn"]))  # fmt: skip

            await page.evaluate("() => window.bench.start()")
            transfer = await wrtc.measure(
                harness, options.warmup, options.duration, mark,
                lambda: wrtc.server_bytes(client, admin, str(connected["peerId"])),
                lambda: browser_cpu_seconds(harness),
            )  # fmt: skip
            final = await page.evaluate("(ms) => window.bench.stop(ms)", 30_000)
            version = browser.version
        finally:
            await browser.close()
        await wrtc.wait_peer_count(client, admin, 0)
    transfer.drained = final["sent"] == final["echoed"]
    transfer.wrong = int(final["wrong"])
    transfer.details.update(
        connect_ms=connected["offerMs"] + connected["postMs"] + connected["openMs"],
        browser_cpu_s=transfer.extra_client_cpu_s,
        browser_processes=len(browser_pids),
        browser_cpus=browser_cpus,
        chromium=version,
    )
    rows = _throughput_rows(transfer)
    notes = [
        _throughput_note("webrtc-throughput-chromium", transfer, f"chromium {version}"),
        f"webrtc-throughput-chromium: the page is /health/live of the server (its origin, so "
        f"fetch() needs no CORS); gen CPU = this process + chromium's {len(browser_pids)} "
        f"processes ({transfer.extra_client_cpu_s:.2f} CPU s of them, excluded from other "
        f"CPU; affinity CPU {','.join(map(str, browser_cpus))})",
    ]
    cores = transfer.cpu.cores_busy_pct
    return Result("webrtc-throughput-chromium", "chromium", 1, rows, notes, None, cores)
