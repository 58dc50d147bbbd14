"""Redis itself restarted (shut down, about 2 s down, started again: every key is gone) while
an admin broadcasts 50 publications a second to a real server process.

Every answer is 202 or 503 with the envelope and Retry-After (never 500); a WebSocket and an
event-stream subscriber that stayed connected receive every acknowledged publication exactly
once; a `gap` is sent only for what is truly gone, and the next publication follows its
cursor; the server resubscribes within 0.5 s of Redis accepting connections, logging one line
when the outage starts and one when it ends."""

from __future__ import annotations

import asyncio
import collections
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support.accounts import Account
from tests.support.nodes import Node, server_process
from tests.support.waiting import eventually

pytestmark = [pytest.mark.usefixtures("clean_tables"), pytest.mark.disruptive, pytest.mark.slow]

CHANNEL = "public:redis-restart"
RATE = 50  # broadcasts a second
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


async def redis_answers() -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", 6379)
    except OSError:
        return False
    try:
        writer.write(b"PING\r\n")
        return (await asyncio.wait_for(reader.readline(), 1)) == b"+PONG\r\n"
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def restart_redis(down_for: float) -> float:
    """Shut Redis down, keep it down `down_for` seconds, start it; return when (monotonic)
    it answered PING again."""
    await asyncio.to_thread(
        subprocess.run, ["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True
    )
    try:
        await eventually(redis_refuses, timeout=10, interval=0.01)
        await asyncio.sleep(down_for)
    finally:
        await asyncio.to_thread(subprocess.run, REDIS_START, check=True, capture_output=True)
    await eventually(redis_answers, timeout=10, interval=0.005)
    return time.monotonic()


async def redis_refuses() -> bool:
    return not await redis_answers()


@pytest.fixture
async def server(settings: Any) -> AsyncIterator[Node]:
    async with server_process(settings) as started:
        yield started


async def read_ws(ws: aiohttp.ClientWebSocketResponse, into: list[dict[str, Any]]) -> None:
    async for message in ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            into.append(orjson.loads(message.data))


async def read_sse(response: aiohttp.ClientResponse, into: list[dict[str, Any]]) -> None:
    event: dict[str, Any] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if "data" in event:
                into.append(event)
            event = {}
        elif line.startswith(("event:", "id:", "data:")):
            name, _, value = line.partition(":")
            event[name] = value.strip()


def publications(frames: list[dict[str, Any]]) -> list[int]:
    return [frame["data"]["n"] for frame in frames if frame.get("type") == "publication"]


def gaps_are_followed(frames: list[dict[str, Any]]) -> None:
    """After a gap, the next publication is the one right after the gap's cursor."""
    for index, frame in enumerate(frames):
        if frame.get("type") != "gap":
            continue
        following = [f for f in frames[index + 1 :] if f.get("type") == "publication"]
        if following:
            epoch, _, offset = frame["cursor"].partition(":")
            assert (following[0]["epoch"], following[0]["offset"]) == (epoch, int(offset) + 1)


async def test_broadcasts_across_a_redis_restart_reach_everyone_once(
    server: Node, admin: Account, alice: Account, bob: Account
) -> None:
    answers: list[tuple[int, int, dict[str, Any], str | None]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        ws = await session.ws_connect(f"{server.base}/realtime/ws", headers=alice.headers)
        assert (await ws.receive_json(timeout=5))["type"] == "connected"
        await ws.send_json({"type": "subscribe", "channel": CHANNEL})
        assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
        sse = await session.get(
            f"{server.base}/realtime/events", params={"channels": CHANNEL}, headers=bob.headers
        )
        assert sse.status == 200
        ws_frames: list[dict[str, Any]] = []
        sse_events: list[dict[str, Any]] = []
        readers = [
            asyncio.ensure_future(read_ws(ws, ws_frames)),
            asyncio.ensure_future(read_sse(sse, sse_events)),
        ]

        async def sse_subscribed() -> bool:
            return any(event.get("event") == "subscribed" for event in sse_events)

        await eventually(sse_subscribed)

        async def broadcast(n: int) -> None:
            async with session.post(
                f"{server.base}/realtime/broadcast",
                json={"channel": CHANNEL, "data": {"n": n}},
                headers=admin.headers,
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                body = await response.json(content_type=None)
                answers.append((n, response.status, body, response.headers.get("Retry-After")))

        async def load(stop: asyncio.Event) -> None:
            sent: list[asyncio.Task[None]] = []
            n = 0
            while not stop.is_set():
                sent.append(asyncio.ensure_future(broadcast(n)))
                n += 1
                await asyncio.sleep(1 / RATE)
            await asyncio.gather(*sent)

        stop = asyncio.Event()
        loader = asyncio.ensure_future(load(stop))
        await asyncio.sleep(1.5)
        down_at = time.monotonic()
        up_at = await restart_redis(down_for=2.0)
        await asyncio.sleep(2.5)
        stop.set()
        await loader

        statuses = collections.Counter(status for _, status, _, _ in answers)
        assert set(statuses) <= {202, 503}, statuses
        for _, status, body, retry_after in answers:
            if status == 503:
                assert body["error"]["code"] == "service_unavailable", body
                assert retry_after is not None
        acknowledged = sorted(n for n, status, _, _ in answers if status == 202)
        assert len(acknowledged) > RATE * 3  # before and after the outage

        async def received_all() -> bool:
            wanted = set(acknowledged)
            sse_frames = [orjson.loads(e["data"]) for e in sse_events]
            return wanted <= set(publications(ws_frames)) and wanted <= set(
                publications(sse_frames)
            )

        try:
            await eventually(received_all, timeout=15, interval=0.2)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await ws.close()
            sse.close()

    sse_frames = [orjson.loads(e["data"]) for e in sse_events]
    for frames in (ws_frames, sse_frames):
        counts = collections.Counter(publications(frames))
        twice = [n for n in acknowledged if counts[n] != 1]
        assert twice == [], f"delivered other than once: {twice[:20]}"
        gaps_are_followed(frames)
    for event in sse_events:  # an SSE gap is a resume point like a publication
        if event.get("event") == "gap":
            assert event["id"] == orjson.loads(event["data"])["cursor"]

    print("answers", dict(statuses), "gaps", [f for f in ws_frames if f.get("type") == "gap"])
    reconnected = server.first_line_after(down_at, "realtime bus reconnected")
    assert reconnected is not None, server.log_text()[-3000:]
    lag = reconnected - up_at
    print(f"resubscribed {lag:.3f} s after Redis answered again")
    assert lag < 0.5
    log = server.log_text()
    assert log.count("realtime bus lost Redis") == 1
    assert log.count("realtime bus reconnected") == 1
    assert "Traceback" not in log, log[-3000:]
