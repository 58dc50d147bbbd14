"""`ws-file`: one 256 MB file over one WebSocket with the upload protocol
(file.begin -> file.ready, binary chunks 0x01 | upload id | uint64 offset | bytes within the
credit window, file.ack, file.end -> file.done), the server's SHA-256 compared with ours,
and the server's VmRSS sampled during the transfer."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import struct
import time
import uuid

import orjson

from bench import realtime as rt
from bench import system
from bench.harness import Harness
from bench.report import Measurement, Result, Target
from bench.scenarios import Options, ScenarioError, scenario
from bench.wsclient import TEXT, WebSocket

FILE_SIZE = 256 * 1024 * 1024  # a multiple of MB
TARGET_MB_S = 100.0
RSS_LIMIT_MB = 50.0
RSS_INTERVAL = 0.02
TRANSFER_TIMEOUT = 120.0
CHUNK_HEAD = struct.Struct("!B16sQ")
MB = 1024 * 1024


class Upload:
    """Sends chunks while fewer than `window` bytes are unacknowledged."""

    def __init__(self, ws: WebSocket, data: bytes, ready: dict[str, object]) -> None:
        self.ws = ws
        self.view = memoryview(data)
        self.upload_id = uuid.UUID(str(ready["upload_id"]))
        self.chunk = int(str(ready["chunk_size"]))
        self.window = int(str(ready["window"]))
        self.acked = int(str(ready["offset"]))
        self.sent = self.acked
        self.acks = 0
        self.done: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        self.progress = asyncio.Event()
        ws.on_message = self.on_message

    def on_message(self, ws: WebSocket, opcode: int, payload: bytes) -> None:
        if opcode != TEXT:
            return
        if payload.startswith(b'{"type":"file.ack"'):
            self.acked = int(payload[payload.rindex(b":") + 1 : -1])
            self.acks += 1
            self.progress.set()
            return
        message = orjson.loads(payload)
        if message.get("type") in ("file.done", "error") and not self.done.done():
            self.done.set_result(message)
        self.progress.set()

    async def send_all(self) -> None:
        size = len(self.view)
        while self.sent < size:
            if self.done.done():  # an error arrived
                return
            if self.sent - self.acked + self.chunk > self.window:
                self.progress.clear()
                await self.progress.wait()
                continue
            end = min(size, self.sent + self.chunk)
            head = CHUNK_HEAD.pack(0x01, self.upload_id.bytes, self.sent)
            self.ws.send_binary_parts(head, self.view[self.sent : end])
            self.sent = end
            await self.ws.drain()
        while self.acked < size and not self.done.done():
            self.progress.clear()
            await self.progress.wait()


def _content(size: int) -> bytes:
    """`size` bytes: one random MB repeated, each copy starting with its own index (so a
    chunk written at the wrong offset changes the SHA-256)."""
    block = random.Random(0x5EED).randbytes(MB)
    return b"".join(i.to_bytes(8, "big") + block[8:] for i in range(size // MB))


async def _sample_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], system.process_rss_bytes(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RSS_INTERVAL)


@scenario("ws-file", "256 MB file upload over one WebSocket (chunks, credit window, sha256)")
async def ws_file(harness: Harness, options: Options) -> Result:
    assert harness.server is not None
    pid = harness.server.pid
    data = _content(FILE_SIZE)
    digest = hashlib.sha256(data).hexdigest()
    headers = await rt.bench_headers(harness)
    ws, _ = await rt.open_ws(harness, headers)
    try:
        await asyncio.sleep(0.5)
        rss_before = system.process_rss_bytes(pid)
        peak = [rss_before]
        stop = asyncio.Event()
        sampler = asyncio.ensure_future(_sample_rss(pid, peak, stop))
        before = harness.snapshot()
        started = time.perf_counter()
        begin = {"type": "file.begin", "id": 1, "name": "bench.bin", "size": FILE_SIZE}
        ws.send_json({**begin, "sha256": digest, "mime": "application/octet-stream"})
        ready = await ws.recv_json("file.ready")
        upload = Upload(ws, data, ready)
        first_chunk = time.perf_counter()
        async with asyncio.timeout(TRANSFER_TIMEOUT):
            await upload.send_all()
            acked = time.perf_counter()
            ws.send_json({"type": "file.end", "id": 2, "upload_id": str(upload.upload_id)})
            done = await upload.done
        finished = time.perf_counter()
        after = harness.snapshot()
        stop.set()
        await sampler
    finally:
        await rt.close_all([ws])
    if done.get("type") != "file.done":
        raise ScenarioError(f"upload failed: {done}")
    del data
    cpu = before.until(after)
    verified = done.get("sha256") == digest and done.get("size") == FILE_SIZE
    growth_mb = (peak[0] - rss_before) / MB
    seconds = finished - started
    transfer = Measurement(
        what="256 MB file.begin -> file.done, 1 WS",
        unit="MB/s",
        operations=FILE_SIZE // MB,
        seconds=seconds,
        latency_ms=None,
        errors=0 if verified else 1,
        **cpu.columns(),
        target=Target(
            f">= {TARGET_MB_S:g} MB/s, sha256 verified",
            verified and FILE_SIZE / MB / seconds >= TARGET_MB_S,
        ),
        details={
            "sha256_client": digest,
            "sha256_server": done.get("sha256"),
            "chunk_size": upload.chunk,
            "window": upload.window,
            "acks": upload.acks,
            "chunks_s": acked - first_chunk,
            "file_end_to_done_s": finished - acked,
            "services_cpu_s": cpu.services,
        },
    )
    memory = Measurement(
        what="server RSS growth (max during the upload)",
        unit="MB",
        operations=0,
        seconds=seconds,
        latency_ms=None,
        errors=0,
        **cpu.columns(),
        figure=f"+{growth_mb:,.1f} MB",
        target=Target(f"< {RSS_LIMIT_MB:g} MB", growth_mb < RSS_LIMIT_MB),
        details={"rss_before_mb": rss_before / MB, "rss_peak_mb": peak[0] / MB},
    )
    notes = [
        f"ws-file: chunks of {upload.chunk // 1024} KB within a {upload.window // MB} MB window: "
        f"{acked - first_chunk:.2f}s to the last file.ack, {finished - acked:.2f}s from file.end "
        f"to file.done (fsync, rename, database); sha256 {'verified' if verified else 'WRONG'}; "
        f"VmRSS {rss_before / MB:.0f} MB before, peak {peak[0] / MB:.0f} MB (sampled every "
        f"{1000 * RSS_INTERVAL:g} ms)"
    ]
    return Result("ws-file", "wsclient", 1, [transfer, memory], notes, None, cpu.cores_busy_pct)
