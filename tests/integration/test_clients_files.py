"""WSClient.send_file: chunked, credit-windowed uploads with progress, checked by SHA-256,
resumed with the same upload_id after a dropped connection."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from realtime_client import RealtimeError, WSClient

from server.app import create_app
from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.integration.test_clients_ws import collect, publication_on, ws_url
from tests.support.accounts import Account

MB = 1024 * 1024
CHUNK = 256 * 1024


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    """Uploads go to tmp_path; a window of two chunks makes the flow control matter."""
    return create_app(
        make_settings(
            UPLOAD_DIR=str(tmp_path / "uploads"), UPLOAD_CHUNK_SIZE=CHUNK, UPLOAD_WINDOW=2 * CHUNK
        )
    )


def random_file(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    return path, data


async def test_send_file_of_3_mb_with_progress_and_sha256(
    client: Any, alice: Account, bob: Account, tmp_path: Path
) -> None:
    path, data = random_file(tmp_path, 3 * MB)
    progress: list[tuple[int, int]] = []
    async with (
        WSClient(ws_url(client), token=alice.access_token) as a,
        WSClient(ws_url(client), token=bob.access_token) as b,
    ):
        await b.subscribe("public:sdk-files")
        done = await a.send_file(
            path, channel="public:sdk-files", progress=lambda n, total: progress.append((n, total))
        )
        assert done["type"] == "file.done"
        assert done["sha256"] == hashlib.sha256(data).hexdigest()
        assert (done["size"], done["name"], done["mime"]) == (3 * MB, "photo.jpg", "image/jpeg")

        sent = [n for n, _ in progress]
        assert sent == sorted(set(sent)), "progress must only increase"
        assert len(sent) > 3  # called along the way, not only at the end
        assert sent[-1] == 3 * MB
        assert {total for _, total in progress} == {3 * MB}

        [announced] = await collect(b, 1, publication_on("public:sdk-files"))
        assert isinstance(announced, dict)
        assert announced["data"]["kind"] == "file"
        assert announced["data"]["file_id"] == done["file_id"]

    download = await client.get(done["url"], headers=bob.headers)
    assert download.status == 200
    assert await download.read() == data


async def test_send_file_resumes_after_the_connection_drops(
    client: Any, alice: Account, tmp_path: Path
) -> None:
    path, data = random_file(tmp_path, 3 * MB)
    progress: list[int] = []
    async with WSClient(ws_url(client), token=alice.access_token, reconnect_delay=0.05) as ws:
        begins: list[dict[str, Any]] = []
        request = ws.request

        async def spy(frame: dict[str, Any], **options: Any) -> dict[str, Any]:
            reply = await request(frame, **options)
            if frame["type"] == "file.begin":
                begins.append({"sent": dict(frame), "ready": reply})
            return reply

        ws.request = spy  # type: ignore[method-assign]

        async def on_progress(done: int, total: int) -> None:
            progress.append(done)
            if done >= MB and ws.reconnects == 0 and ws._ws is not None:
                await ws._ws.close()  # behind the client's back, mid-upload

        done = await ws.send_file(path, progress=on_progress)

    assert ws.reconnects == 1
    assert done["sha256"] == hashlib.sha256(data).hexdigest()
    assert [len(b["ready"]) > 0 for b in begins] == [True, True]
    first, resumed = begins
    assert "upload_id" not in first["sent"]
    assert resumed["sent"]["upload_id"] == first["ready"]["upload_id"] == done["file_id"]
    assert MB <= resumed["ready"]["offset"] < 3 * MB  # continued from the server's offset
    assert progress == sorted(set(progress))
    assert progress[-1] == 3 * MB


async def test_send_file_errors_raise(client: Any, alice: Account, tmp_path: Path) -> None:
    path, _ = random_file(tmp_path, 1000)
    async with WSClient(ws_url(client), token=alice.access_token) as ws:
        with pytest.raises(RealtimeError) as forbidden:
            await ws.send_file(path, channel="system")
        assert forbidden.value.code == "forbidden"
        empty = tmp_path / "empty.txt"
        empty.write_bytes(b"")
        done = await asyncio.wait_for(ws.send_file(empty, sha256=False), 10)
        assert done["size"] == 0
