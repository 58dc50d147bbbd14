"""What the WebRTC scenarios' aiortc peers send and count: the throughput scenario's echo
pump (16 KiB messages within a bounded window), the capacity scenarios' open-loop timed
echoes, a pre-encoded 640x480 VP8 clip sent without encoding, and a counter of the frames
echoed back."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import os
import struct
import time
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCDataChannel, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from bench.webrtc import HIGH_WATER, LOW_WATER, MESSAGE_SIZE, WINDOW, Mark

_perf = time.perf_counter


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


# -- capacity: timed echoes, a pre-encoded 640x480 video, frames counted ------------------------


class TimedEcho:
    """Sends `rate` messages a second on the `echo` channel at fixed times (open loop: a late
    send is timed from when it was due, so a stalled generator or server shows in the
    latency instead of slowing the load), each carrying its due time; keeps the echo latency
    (ms) of the messages due inside the recording window."""

    def __init__(self, channel: RTCDataChannel, rate: float, size: int) -> None:
        self.channel = channel
        self.interval = 1.0 / rate
        self.padding = bytes(max(0, size - 8))
        self.start = math.inf
        self.end = -math.inf
        self.due = 0  # messages due inside the window
        self.latencies: list[float] = []
        channel.on("message", self.on_message)

    def record(self, start: float, end: float) -> None:
        """Keep the echoes of messages due in [start, end) (perf_counter seconds)."""
        self.start, self.end, self.due, self.latencies = start, end, 0, []

    def on_message(self, message: bytes | str) -> None:
        if isinstance(message, bytes) and len(message) >= 8:
            (due,) = struct.unpack_from("!d", message)
            if self.start <= due < self.end:
                self.latencies.append(1000 * (_perf() - due))

    async def run(self, first_due: float) -> None:
        due = first_due
        while True:
            delay = due - _perf()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.start <= due < self.end:
                self.due += 1
            self.channel.send(struct.pack("!d", due) + self.padding)
            due += self.interval


VIDEO_WIDTH, VIDEO_HEIGHT = 640, 480
VIDEO_BITRATE = 1_000_000  # a 480p webcam; aiortc's own encoder adapts within 0.25-1.5 Mbps
CLIP_FRAMES = 90  # 3 s at 30 fps: a keyframe each time the clip starts again


def encode_clip(frames: int = CLIP_FRAMES) -> list[bytes]:
    """VP8 frames of a moving 640x480 picture (a panning gradient, a bouncing box, sensor
    noise), encoded once with libvpx set up as aiortc does (realtime, CBR). The generator's
    peers send these bytes as they are, so that they cost no encoding: the generator's core
    then decodes the echoes only, and the server's core does what a real call costs it
    (decode every frame, encode it again)."""
    import numpy

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = VIDEO_WIDTH, VIDEO_HEIGHT, "yuv420p"
    codec.bit_rate = VIDEO_BITRATE
    codec.gop_size = frames  # one keyframe, at the start of the clip
    codec.time_base = fractions.Fraction(1, 30)
    codec.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0",
                     "minrate": str(VIDEO_BITRATE), "maxrate": str(VIDEO_BITRATE),
                     "bufsize": str(VIDEO_BITRATE)}  # fmt: skip
    noise = numpy.random.default_rng(15).integers(0, 24, (4, VIDEO_HEIGHT, VIDEO_WIDTH))
    rows = numpy.arange(VIDEO_HEIGHT)[:, None]
    columns = numpy.arange(VIDEO_WIDTH)[None, :]
    chroma = numpy.full((VIDEO_HEIGHT // 2, VIDEO_WIDTH), 128, numpy.uint8)
    clip: list[bytes] = []
    for index in range(frames):
        luma = (columns + rows // 2 + 3 * index) % 200 + noise[index % 4]
        top, left = abs(index * 5 % 560 - 280) + 40, abs(index * 7 % 1040 - 520) + 20
        luma[top : top + 80, left : left + 100] = 235
        picture = numpy.concatenate([luma.astype(numpy.uint8), chroma + (index % 30)])
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts, frame.time_base = index, codec.time_base
        clip.append(b"".join(bytes(packet) for packet in codec.encode(frame)))
    return clip


class ClipTrack(VideoStreamTrack):
    """Sends the clip's encoded frames in a loop at 30 fps (aiortc packetizes an av.Packet
    without encoding it)."""

    def __init__(self, clip: list[bytes]) -> None:
        super().__init__()
        self.clip = clip
        self.sent = 0

    async def recv(self) -> av.Packet[Any]:  # type: ignore[override]
        pts, time_base = await self.next_timestamp()
        packet = av.Packet(self.clip[self.sent % len(self.clip)])
        packet.pts, packet.time_base = pts, time_base
        self.sent += 1
        return packet


class FrameCounter:
    """Reads a received track (aiortc decodes it in a thread of its own) and counts frames."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.frames = 0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.track.recv()
            except MediaStreamError:
                return
            self.frames += 1

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
