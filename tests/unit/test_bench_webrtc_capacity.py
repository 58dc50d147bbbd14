"""The pieces of the WebRTC capacity benchmarks that need no network: the pre-encoded video
clip the media peers send (it must decode to 640x480 from its first frame, at a webcam's
bitrate) and the open-loop echo timer's window accounting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import av

from bench import webrtc_media as media


def test_the_clip_decodes_from_its_first_frame_at_640x480_and_about_1_mbps() -> None:
    clip = media.encode_clip(30)
    decoder = av.CodecContext.create("libvpx", "r")
    frames = [frame for data in clip for frame in decoder.decode(av.Packet(data))]
    assert len(frames) == 30
    assert {(f.width, f.height) for f in frames} == {(media.VIDEO_WIDTH, media.VIDEO_HEIGHT)}
    assert clip[0][0] & 1 == 0  # VP8: bit 0 of the first byte is 0 on a keyframe
    assert all(data[0] & 1 for data in clip[1:])  # one keyframe per loop of the clip
    bitrate = 8 * sum(map(len, clip[1:])) / (len(clip) - 1) * 30
    assert 0.3e6 < bitrate < 2e6, bitrate


class LoopbackChannel:
    """Echoes every message after `delay` seconds (pure logic: no SCTP)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.handler: Any = None

    def on(self, event: str, handler: Any) -> None:
        self.handler = handler

    def send(self, message: bytes) -> None:
        asyncio.get_running_loop().call_later(self.delay, self.handler, message)


async def test_timed_echo_keeps_the_echoes_of_messages_due_in_the_window() -> None:
    channel = LoopbackChannel(0.02)
    echo = media.TimedEcho(channel, rate=50.0, size=100)  # type: ignore[arg-type]
    start = time.perf_counter() + 0.1
    echo.record(start, start + 0.2)  # 10 messages due in the window
    task = asyncio.ensure_future(echo.run(time.perf_counter()))
    await asyncio.sleep(0.45)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert echo.due == 10
    assert len(echo.latencies) == 10
    assert all(15 < ms < 200 for ms in echo.latencies), echo.latencies
