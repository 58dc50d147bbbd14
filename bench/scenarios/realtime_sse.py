"""`sse-fanout`: 500 Server-Sent Events streams (GET /realtime/events, bench/wsclient.py's
EventStream) subscribed to one channel, WebSocket publishers in a closed loop (one, then
16), every `publication` event counted per stream and timed from the timestamp in its data."""

from __future__ import annotations

import asyncio
import secrets
import time

from bench import loadgen, wsclient
from bench import realtime as rt
from bench.harness import Harness
from bench.report import Result, Target
from bench.scenarios import Options, ScenarioError, scenario
from bench.wsclient import EventStream

SUBSCRIBERS = 500
SINGLE_WINDOW = 16  # one publisher: publications in flight (not yet received by every stream)
PUBLISHERS = 16  # the second phase: 16 publishers, one publication in flight each
SSE_TARGET = 80_000
SUBSCRIBED_TIMEOUT = 30.0


async def _wait_subscribed(
    harness: Harness, headers: dict[str, str], channel: str, count: int
) -> None:
    """An SSE stream gets no `subscribed` answer: poll the channel's presence
    (GET /realtime/channels/{name}/presence) until every stream is a member. A member's
    subscription position is taken, so every later publication reaches it."""
    deadline = time.monotonic() + SUBSCRIBED_TIMEOUT
    members = 0
    async with loadgen.session(harness.base_url, 1) as client:
        while time.monotonic() < deadline:
            url = f"/realtime/channels/{channel}/presence"
            async with client.get(url, headers=headers) as answer:
                if answer.status != 200:
                    raise ScenarioError(f"GET {url}: HTTP {answer.status} {await answer.text()}")
                members = len((await answer.json())["members"])
            if members >= count:
                return
            await asyncio.sleep(0.2)
    raise ScenarioError(f"only {members} of {count} SSE streams subscribed in time")


@scenario("sse-fanout", "SSE fan-out to 500 EventSource streams: 1 WS publisher, then 16")
async def sse_fanout(harness: Harness, options: Options) -> Result:
    started = time.perf_counter()
    headers = await rt.bench_headers(harness)
    channel = f"public:sse-{secrets.token_hex(4)}"
    fanout = rt.Fanout(channel, SUBSCRIBERS)

    async def one(i: int) -> EventStream:
        stream = await wsclient.open_events(
            rt.HOST, harness.port, f"/realtime/events?channels={channel}", headers, fanout.on_sse
        )
        stream.user = rt.Subscriber(0)  # a new channel: its first publication is offset 1
        return stream

    streams = await rt.gather_limited(SUBSCRIBERS, one)
    senders: list[wsclient.WebSocket] = []
    rows = []
    try:
        await _wait_subscribed(harness, headers, channel, SUBSCRIBERS)
        senders = await rt.publishers(harness, headers, fanout, PUBLISHERS)
        await rt.barrier(fanout)
        setup = time.perf_counter() - started
        for count, window in ((1, SINGLE_WINDOW), (PUBLISHERS, PUBLISHERS)):
            fanout = fanout.successor(window, senders[:count], streams)
            phase = await rt.closed_loop(harness, options, fanout, streams)
            if not phase.drained:
                raise ScenarioError(
                    f"{count} publisher(s): publications did not reach every stream within "
                    f"{rt.DRAIN_TIMEOUT:g}s after the load stopped"
                )
            what = f"{count} publisher{'s' if count > 1 else ''} -> {SUBSCRIBERS} SSE streams"
            row = rt.fanout_row(what, fanout, streams, phase)
            row.target = Target(
                f">= {SSE_TARGET:,}/s, 0 lost", row.throughput >= SSE_TARGET and row.errors == 0
            )
            rows.append(row)
    finally:
        await rt.close_all([*streams, *senders])
    quiet = await rt.wait_quiet(harness)
    notes = [
        f"sse-fanout: {row.details['publishers']} publisher(s), {row.details['window']} "
        f"publications in flight: {row.details['publications_measured']:,} measured "
        f"publications, {row.details['lost']} deliveries lost, {row.details['offset_gaps']} "
        "offset gaps"
        for row in rows
    ]
    notes.append(f"sse-fanout: setup {setup:.1f}s, quiet after close {quiet:.1f}s")
    return Result(
        "sse-fanout", "wsclient", SUBSCRIBERS, rows, notes, None, phase.cpu.cores_busy_pct
    )
