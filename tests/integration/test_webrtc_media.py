"""Media with the server peer: what an aiortc client sends comes back on the echoed
tracks, and in a recording room it is written to a WebM file its owner can download."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import av
import pytest
import sqlalchemy as sa
from aiohttp import web

from server.kernel.settings import Settings
from storage.db import Row, transaction
from storage.tables import files
from tests.support.accounts import Account
from tests.support.rtc import accept_answer, client_peer, offer_sdp
from tests.support.rtc_media import (
    ColorVideoTrack,
    FrameSink,
    Signaling,
    ToneAudioTrack,
    create_room,
    rtc_app,
    wait_connected,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def upload_dir(tmp_path: Path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
def app(settings: Settings, upload_dir: Path) -> web.Application:
    return rtc_app(settings, upload_dir)


def mean_luma(frame: av.VideoFrame) -> float:
    """The average Y of a frame's visible pixels (rows are padded to line_size)."""
    plane = frame.reformat(format="yuv420p").planes[0]
    data = bytes(plane)
    rows = [
        data[y * plane.line_size : y * plane.line_size + frame.width] for y in range(frame.height)
    ]
    return sum(sum(row) for row in rows) / (frame.width * frame.height)


class MediaClient:
    """A client peer sending a colour video track (and a tone) whose echoes are read."""

    def __init__(self, *, audio: bool = True) -> None:
        self.pc = client_peer()
        self.video = ColorVideoTrack()
        self.pc.addTrack(self.video)
        self.audio = ToneAudioTrack() if audio else None
        if self.audio is not None:
            self.pc.addTrack(self.audio)
        self.sinks: dict[str, FrameSink] = {}
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        self.sinks[track.kind] = FrameSink(track)

    async def close(self) -> None:
        await self.pc.close()
        for sink in self.sinks.values():
            await sink.stop()


def files_in(root: Path, pattern: str) -> list[Path]:
    return sorted(path for path in root.rglob(pattern) if path.is_file())


async def recordings_of(db: Any, owner_id: int) -> list[Row]:
    async with transaction(db) as conn:
        return await conn.fetch_all(sa.select(files).where(files.c.owner_id == owner_id))


async def test_video_and_audio_come_back_on_the_echoed_tracks(client: Any, alice: Account) -> None:
    room = await create_room(client, alice)
    signaling = await Signaling.open(client, alice)
    await signaling.join(room["id"])
    media = MediaClient()
    await signaling.call_server(media.pc)
    await wait_connected(media.pc)
    assert set(media.sinks) == {"video", "audio"}
    frame = await asyncio.wait_for(media.sinks["video"].first, 10)
    assert isinstance(frame, av.VideoFrame)
    assert (frame.width, frame.height) == (160, 120)
    assert abs(mean_luma(frame) - media.video.yuv[0]) < 20  # our colour, through VP8 twice
    assert isinstance(await asyncio.wait_for(media.sinks["audio"].first, 10), av.AudioFrame)
    await media.close()
    await signaling.close()


async def test_video_only_offer_over_http_is_echoed(client: Any, alice: Account) -> None:
    media = MediaClient(audio=False)
    response = await client.post(
        "/realtime/webrtc/offer",
        json={"sdp": await offer_sdp(media.pc), "type": "offer"},
        headers=alice.headers,
    )
    assert response.status == 201, await response.text()
    await accept_answer(media.pc, (await response.json())["sdp"])
    assert set(media.sinks) == {"video"}
    await asyncio.wait_for(media.sinks["video"].first, 10)
    await media.close()


async def record(
    client: Any, account: Account, db: Any, *, audio: bool, frames: int
) -> tuple[Signaling, Row]:
    """Send `frames` video frames (30 a second) to the server peer of a recording room,
    hang up (the signaling connection stays) and return the stored recording."""
    room = await create_room(client, account, record=True)
    signaling = await Signaling.open(client, account)
    await signaling.join(room["id"])
    media = MediaClient(audio=audio)
    await signaling.call_server(media.pc)
    await wait_connected(media.pc)
    await asyncio.wait_for(media.sinks["video"].first, 10)
    start = media.video.sent

    async def sent_enough() -> bool:
        return media.video.sent - start >= frames

    await eventually(sent_enough, timeout=20)
    assert await recordings_of(db, account.id) == []  # stored when the peer ends
    await media.close()

    async def stored() -> list[Row]:
        return [r for r in await recordings_of(db, account.id) if r["status"] == "complete"]

    [row] = await eventually(stored, timeout=20)
    return signaling, row


@pytest.mark.parametrize("audio", [True, False], ids=["video+audio", "video"])
async def test_recording_room_stores_a_webm_file_for_the_user(
    client: Any, alice: Account, bob: Account, db: Any, upload_dir: Path, audio: bool
) -> None:
    signaling, row = await record(client, alice, db, audio=audio, frames=75)  # ~2.5 s
    assert row["mime"] == "video/webm"
    assert row["name"].startswith("recording-room-") and row["name"].endswith(".webm")
    path = upload_dir / row["id"].hex[:2] / str(row["id"])
    assert path.stat().st_size == row["size"] > 0
    assert files_in(upload_dir, "*.part") == []
    with av.open(str(path)) as container:
        kinds = sorted(stream.type for stream in container.streams)
        assert kinds == (["audio", "video"] if audio else ["video"])
        assert container.duration is not None
        assert container.duration / av.time_base > 1.0, container.duration
        decoded = next(container.decode(video=0))
        assert (decoded.width, decoded.height) == (160, 120)

    download = await client.get(f"/realtime/files/{row['id']}", headers=alice.headers)
    assert download.status == 200
    assert download.headers["Content-Type"] == "video/webm"
    assert await download.read() == path.read_bytes()
    other = await client.get(f"/realtime/files/{row['id']}", headers=bob.headers)
    assert other.status == 404
    await signaling.ping()
    await signaling.close()


async def test_recording_download_carries_its_sha256(client: Any, alice: Account, db: Any) -> None:
    signaling, row = await record(client, alice, db, audio=False, frames=30)
    download = await client.get(f"/realtime/files/{row['id']}", headers=alice.headers)
    assert download.status == 200
    await download.read()
    await signaling.close()
    digest = base64.b64encode(bytes.fromhex(row["sha256"])).decode()
    assert download.headers["Repr-Digest"] == f"sha-256=:{digest}:"
    etag = download.headers["ETag"]
    again = await client.get(
        f"/realtime/files/{row['id']}", headers={**alice.headers, "If-None-Match": etag}
    )
    assert again.status == 304


async def test_room_without_recording_stores_nothing(
    client: Any, alice: Account, db: Any, upload_dir: Path
) -> None:
    room = await create_room(client, alice)
    signaling = await Signaling.open(client, alice)
    await signaling.join(room["id"])
    media = MediaClient()
    await signaling.call_server(media.pc)
    await asyncio.wait_for(media.sinks["video"].first, 10)
    await media.close()
    await signaling.close()
    await asyncio.sleep(0.5)
    assert await recordings_of(db, alice.id) == []
    assert files_in(upload_dir, "*") == []


async def test_other_members_video_fills_receive_only_transceivers(
    client: Any, alice: Account, bob: Account
) -> None:
    room = await create_room(client, alice)
    a = await Signaling.open(client, alice)
    await a.join(room["id"])
    sender = MediaClient(audio=False)
    await a.call_server(sender.pc)
    await asyncio.wait_for(sender.sinks["video"].first, 10)

    b = await Signaling.open(client, bob)
    await b.join(room["id"])
    viewer = client_peer()
    viewer.addTransceiver("video", direction="recvonly")
    sinks: list[FrameSink] = []
    viewer.on("track", lambda track: sinks.append(FrameSink(track)))
    answer = await b.call_server(viewer)
    assert "a=sendonly" in answer["sdp"]
    [sink] = sinks
    frame = await asyncio.wait_for(sink.first, 10)
    assert abs(mean_luma(frame) - sender.video.yuv[0]) < 20  # alice's colour
    await sink.stop()
    await viewer.close()
    await sender.close()
    await a.close()
    await b.close()
