"""WebRTC test helpers: synthetic media tracks, a sink that notices frames arriving, and a
signaling client on the realtime WebSocket that keeps the frames it has not looked at yet."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import struct
from pathlib import Path
from typing import Any

import av
from aiohttp import web
from aiortc import AudioStreamTrack, MediaStreamTrack, RTCPeerConnection, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from server.app import create_app
from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.support.accounts import Account
from tests.support.rtc import accept_answer, offer_sdp


def rtc_app(settings: Settings, upload_dir: Path, **overrides: Any) -> web.Application:
    """The app on the session's database, its peers gathering loopback candidates only."""
    return create_app(
        make_settings(
            POSTGRES_DB=settings.POSTGRES_DB,
            ICE_HOST_ADDRESSES="127.0.0.1",
            UPLOAD_DIR=str(upload_dir),
            **overrides,
        )
    )


async def create_room(client: Any, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/realtime/webrtc/rooms", json={"name": "room", **fields}, headers=account.headers
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def server_peers(client: Any, admin: Account) -> list[dict[str, Any]]:
    response = await client.get("/realtime/webrtc/peers", headers=admin.headers)
    assert response.status == 200, await response.text()
    return list((await response.json())["peers"])


class ColorVideoTrack(VideoStreamTrack):
    """Frames of one solid colour (YUV), at VideoStreamTrack's pace (30 fps)."""

    def __init__(
        self, width: int = 160, height: int = 120, yuv: tuple[int, int, int] = (81, 90, 240)
    ) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self.yuv = yuv
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, value in zip(frame.planes, self.yuv, strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        self.sent += 1
        return frame


class ToneAudioTrack(AudioStreamTrack):
    """A 440 Hz sine, mono, 48 kHz, in 20 ms frames."""

    RATE = 48000
    SAMPLES = 960

    def __init__(self, frequency: float = 440.0) -> None:
        super().__init__()
        self.frequency = frequency
        self._start: float | None = None
        self._timestamp = 0

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._timestamp += self.SAMPLES
            wait = self._start + self._timestamp / self.RATE - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = [
            int(8000 * math.sin(2 * math.pi * self.frequency * (self._timestamp + i) / self.RATE))
            for i in range(self.SAMPLES)
        ]
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(struct.pack(f"<{self.SAMPLES}h", *samples))
        frame.sample_rate = self.RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, self.RATE)
        return frame


class FrameSink:
    """Reads a remote track until it ends; `first` resolves with the first frame."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.frames = 0
        self.first: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            self.frames += 1
            if not self.first.done():
                self.first.set_result(frame)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
            await self._task


class Signaling:
    """A WebSocket on /realtime/webrtc/signaling. `next()` returns the next frame of a type
    (or an error), keeping the frames of other types for later calls."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.hello: dict[str, Any] = {}
        self.pending: list[dict[str, Any]] = []

    @classmethod
    async def open(
        cls, client: Any, account: Account, path: str = "/realtime/webrtc/signaling"
    ) -> Signaling:
        signaling = cls(await client.ws_connect(path, headers=account.headers))
        signaling.hello = await signaling.next("connected")
        return signaling

    @property
    def peer_id(self) -> str:
        return str(self.hello["client_id"])

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_json(frame)

    async def next(self, *kinds: str, timeout: float = 10, errors: bool = True) -> dict[str, Any]:
        wanted = (*kinds, "error") if errors else kinds
        for index, frame in enumerate(self.pending):
            if frame["type"] in wanted:
                return self.pending.pop(index)
        async with asyncio.timeout(timeout):
            while True:
                frame = dict(await self.ws.receive_json())
                if frame["type"] in wanted:
                    return frame
                self.pending.append(frame)

    async def request(self, frame: dict[str, Any], *kinds: str) -> dict[str, Any]:
        await self.send(frame)
        return await self.next(*kinds)

    async def join(self, room_id: str) -> dict[str, Any]:
        joined = await self.request({"type": "join", "room": room_id}, "joined")
        assert joined["type"] == "joined", joined
        return joined

    async def ping(self, data: Any = "still there?") -> None:
        """The connection still answers: a ping gets its pong."""
        pong = await self.request({"type": "ping", "data": data, "id": f"ping-{data}"}, "pong")
        assert pong == {"type": "pong", "data": data, "id": f"ping-{data}"}, pong

    async def call_server(self, pc: RTCPeerConnection) -> dict[str, Any]:
        """Offer to the server peer and apply its answer."""
        answer = await self.request(
            {"type": "offer", "to": "server", "sdp": await offer_sdp(pc)}, "answer"
        )
        assert answer["type"] == "answer" and answer["from"] == "server", answer
        await accept_answer(pc, answer["sdp"])
        return answer

    async def close(self) -> None:
        await self.ws.close()


async def wait_connected(pc: RTCPeerConnection, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while pc.connectionState != "connected":
            if pc.connectionState in ("failed", "closed"):
                raise AssertionError(f"the peer connection is {pc.connectionState}")
            await asyncio.sleep(0.05)


def split_candidates(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """An SDP without its candidates, and the candidates as RTCIceCandidateInit dicts (as a
    browser trickles them), so that they have to travel through signaling."""
    lines: list[str] = []
    candidates: list[dict[str, Any]] = []
    index, mid = -1, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            index, mid = index + 1, None
        elif line.startswith("a=mid:"):
            mid = line.removeprefix("a=mid:")
        if line.startswith("a=candidate:"):
            candidates.append(
                {"candidate": line.removeprefix("a="), "sdpMid": mid, "sdpMLineIndex": index}
            )
        elif line != "a=end-of-candidates":
            lines.append(line)
    for candidate in candidates:  # a=mid may follow the candidates of its section
        if candidate["sdpMid"] is None:
            candidate["sdpMid"] = _mid_of(lines, candidate["sdpMLineIndex"])
    return "\r\n".join(lines) + "\r\n", candidates


def _mid_of(lines: list[str], index: int) -> str | None:
    sections = -1
    for line in lines:
        if line.startswith("m="):
            sections += 1
        elif sections == index and line.startswith("a=mid:"):
            return line.removeprefix("a=mid:")
    return None


async def add_candidate(pc: RTCPeerConnection, init: dict[str, Any] | None) -> None:
    """Apply a candidate received through signaling (None: end of candidates)."""
    if init is None:
        await pc.addIceCandidate(None)
        return
    candidate = candidate_from_sdp(init["candidate"].removeprefix("candidate:"))
    candidate.sdpMid = init["sdpMid"]
    candidate.sdpMLineIndex = init["sdpMLineIndex"]
    await pc.addIceCandidate(candidate)
