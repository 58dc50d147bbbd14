"""WebSocket file uploads, each a real round trip: file.begin -> chunks (credit-based, at
most `window` bytes unacknowledged) -> file.end -> file.done; then the bytes on disk, the
announcement on the channel and GET /realtime/files/{id} (with Range) for who may read it.
Also resuming after a dropped connection, aborting, hostile names and memory use."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.app import create_app
from server.hub.binary import chunk_frame
from server.kernel.settings import Settings
from storage import files
from storage.db import transaction
from tests.conftest import make_settings
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account, create_account, log_in
from tests.support.waiting import eventually

MB = 1024 * 1024
# carol may subscribe to inbox:<carol's id> and nobody else's; any user may publish there
NAMESPACES = json.dumps({"inbox": {"subscribe": "owner", "publish": "user"}})


def upload_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"UPLOAD_DIR": str(tmp_path), "CHANNEL_NAMESPACES": NAMESPACES}
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> web.Application:
    """The app of the `client` fixture (and so of alice, bob, admin), writing to tmp_path."""
    return create_app(upload_settings(tmp_path))


@pytest.fixture
async def carol(client: Any, db: Any, auth_service: Any) -> Account:
    return await log_in(client, await create_account(db, auth_service))


async def upload_client(aiohttp_client: Any, tmp_path: Path, **overrides: Any) -> Any:
    """Another app on the same database (accounts logged in elsewhere work here too)."""
    return await aiohttp_client(create_app(upload_settings(tmp_path, **overrides)))


# -- the client side of the protocol ----------------------------------------------------------


class UploadFailed(Exception):
    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.frame = frame


async def expect(ws: Any, kind: str, timeout: float = 10) -> dict[str, Any]:
    """The next frame of this type; an error frame (or a publication) in between is
    returned / skipped: errors raise UploadFailed."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive_json()
            if frame["type"] == kind:
                return frame
            if frame["type"] == "error":
                raise UploadFailed(frame)
            if frame["type"] == "file.ack":  # another upload's progress: not lost
                _SENDERS[id(ws)][frame["upload_id"]]._acknowledged(frame["offset"])


async def begin(ws: Any, **fields: Any) -> dict[str, Any]:
    await ws.send_json({"type": "file.begin", **fields})
    return await expect(ws, "file.ready")


async def error_of(ws: Any, timeout: float = 10) -> dict[str, Any]:
    """The next error frame; acks and other frames in between are skipped."""
    return await next_of(ws, "error", timeout)


async def still_answers(ws: Any) -> None:
    token = uuid.uuid4().hex
    await ws.send_json({"type": "ping", "id": token})
    async with asyncio.timeout(5):
        while True:
            frame = await ws.receive_json()
            if frame["type"] == "pong" and frame.get("id") == token:
                return


_SENDERS: dict[int, dict[str, Sender]] = {}


class Sender:
    """Sends chunks with credit-based flow control: never more than `window` bytes sent
    and not yet acknowledged. Records the most it ever had outstanding."""

    def __init__(self, ws: Any, ready: dict[str, Any]) -> None:
        self.ws = ws
        self.upload_id = uuid.UUID(ready["upload_id"])
        self.chunk_size = ready["chunk_size"]
        self.window = ready["window"]
        self.sent = ready["offset"]
        self.acked = ready["offset"]
        self.max_outstanding = 0
        self.acks = 0
        # acks of every upload on this connection go to their own sender
        self.peers = _SENDERS.setdefault(id(ws), {})
        self.peers[str(self.upload_id)] = self

    def _acknowledged(self, offset: int) -> None:
        assert self.acked <= offset <= self.sent
        self.acked = offset
        self.acks += 1

    async def _take_ack(self) -> None:
        acks = self.acks
        while self.acks == acks:
            frame = await expect(self.ws, "file.ack")
            self.peers[frame["upload_id"]]._acknowledged(frame["offset"])

    async def send(self, data: bytes | memoryview) -> None:
        if self.sent - self.acked + len(data) > self.window:
            while self.sent - self.acked + len(data) > self.window:
                await self._take_ack()
        await self.ws.send_bytes(chunk_frame(self.upload_id, self.sent, bytes(data)))
        self.sent += len(data)
        self.max_outstanding = max(self.max_outstanding, self.sent - self.acked)

    async def send_all(self, data: bytes, start: int | None = None, end: int | None = None) -> None:
        position = self.sent if start is None else start
        end = len(data) if end is None else end
        view = memoryview(data)
        while position < end:
            piece = view[position : min(position + self.chunk_size, end)]
            await self.send(piece)
            position += len(piece)

    async def drain(self) -> None:
        while self.acked < self.sent:
            await self._take_ack()

    async def end(self) -> dict[str, Any]:
        await self.drain()
        await self.ws.send_json({"type": "file.end", "upload_id": str(self.upload_id)})
        return await expect(self.ws, "file.done", timeout=30)


def stored_path(root: Path, file_id: str, *, partial: bool = False) -> Path:
    return root / uuid.UUID(file_id).hex[:2] / (f"{file_id}.part" if partial else file_id)


def abort_socket(ws: Any) -> None:
    """Drop the connection without a closing handshake (a network failure)."""
    ws._conn.transport.abort()


async def file_row(db: Any, file_id: str) -> dict[str, Any] | None:
    async with transaction(db) as conn:
        return await files.get(conn, uuid.UUID(file_id))


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


# -- the full round trip ----------------------------------------------------------------------


async def test_five_megabytes_round_trip(
    aiohttp_client: Any,
    tmp_path: Path,
    alice: Account,
    bob: Account,
    carol: Account,
    admin: Account,
    db: Any,
) -> None:
    client = await upload_client(aiohttp_client, tmp_path, UPLOAD_WINDOW=MB)
    data = os.urandom(5 * MB)
    digest = hashlib.sha256(data).hexdigest()
    channel = f"inbox:{carol.id}"

    listener = await connect(client, carol)
    await listener.send_json({"type": "subscribe", "channel": channel})
    await next_of(listener, "subscribed")

    ws = await connect(client, alice)
    ready = await begin(
        ws, name="photo.bin", mime="application/octet-stream", size=len(data), sha256=digest,
        channel=channel,
    )  # fmt: skip
    assert ready["offset"] == 0
    assert ready["chunk_size"] == 256 * 1024
    assert ready["window"] == MB
    sender = Sender(ws, ready)
    started = time.perf_counter()
    await sender.send_all(data)
    done = await sender.end()
    elapsed = time.perf_counter() - started
    print(f"5 MB over WS: {len(data) / MB / elapsed:.1f} MB/s")
    assert 0 < sender.max_outstanding <= ready["window"]
    assert sender.acks >= len(data) // ready["chunk_size"]
    assert done["sha256"] == digest
    assert done["size"] == len(data)
    assert done["file_id"] == ready["upload_id"]
    assert done["url"] == f"/realtime/files/{done['file_id']}"

    assert stored_path(tmp_path, done["file_id"]).read_bytes() == data
    assert not stored_path(tmp_path, done["file_id"], partial=True).exists()

    publication = await next_of(listener, "publication")
    assert publication["channel"] == channel
    assert publication["data"]["kind"] == "file"
    assert publication["data"]["file_id"] == done["file_id"]
    assert publication["data"]["sha256"] == digest
    assert publication["data"]["size"] == len(data)
    assert publication["from"]["user_id"] == alice.id

    for reader in (alice, carol, admin):  # owner, subscriber of the channel, admin
        response = await client.get(done["url"], headers=reader.headers)
        assert response.status == 200, reader
        assert await response.read() == data
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert "attachment" in response.headers["Content-Disposition"]

    response = await client.get(done["url"], headers={**carol.headers, "Range": "bytes=100-199"})
    assert response.status == 206
    assert await response.read() == data[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(data)}"

    response = await client.get(done["url"], headers={**alice.headers, "Range": "bytes=-10"})
    assert response.status == 206
    assert await response.read() == data[-10:]

    response = await client.get(done["url"], headers=bob.headers)  # may not read inbox:carol
    assert response.status == 404
    response = await client.get(done["url"])
    assert response.status == 401
    response = await client.get(f"/realtime/files/{uuid.uuid4()}", headers=alice.headers)
    assert response.status == 404
    response = await client.get("/realtime/files/not-a-uuid", headers=alice.headers)
    assert response.status == 404

    row = await file_row(db, done["file_id"])
    assert row is not None
    assert row["status"] == "complete"
    assert row["owner_id"] == alice.id
    assert row["received"] == row["size"] == len(data)
    await ws.close()
    await listener.close()


async def test_file_without_channel_is_only_for_its_owner_and_admins(
    client: Any, tmp_path: Path, alice: Account, bob: Account, admin: Account
) -> None:
    ws = await connect(client, alice)
    data = b"private bytes\n" * 1000
    ready = await begin(ws, name="notes.txt", mime="text/plain", size=len(data))
    sender = Sender(ws, ready)
    await sender.send_all(data)
    done = await sender.end()
    assert done["sha256"] == hashlib.sha256(data).hexdigest()  # computed when not given
    for reader, status in ((alice, 200), (admin, 200), (bob, 404)):
        response = await client.get(done["url"], headers=reader.headers)
        assert response.status == status
    await ws.close()


async def test_public_channel_file_is_readable_by_any_user(
    client: Any, alice: Account, bob: Account
) -> None:
    ws = await connect(client, alice)
    ready = await begin(ws, name="a.txt", mime="text/plain", size=3, channel="public:uploads")
    sender = Sender(ws, ready)
    await sender.send_all(b"abc")
    done = await sender.end()
    response = await client.get(done["url"], headers=bob.headers)
    assert response.status == 200
    assert await response.read() == b"abc"
    await ws.close()


async def test_empty_file(client: Any, tmp_path: Path, alice: Account) -> None:
    ws = await connect(client, alice)
    ready = await begin(ws, name="empty", size=0, sha256=hashlib.sha256(b"").hexdigest())
    done = await Sender(ws, ready).end()
    assert done["size"] == 0
    assert stored_path(tmp_path, done["file_id"]).read_bytes() == b""
    response = await client.get(done["url"], headers=alice.headers)
    assert response.status == 200
    assert await response.read() == b""
    await ws.close()


async def test_two_uploads_at_once_on_one_connection(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    first, second = os.urandom(300_000), os.urandom(200_000)
    a = Sender(ws, await begin(ws, name="a", size=len(first)))
    b = Sender(ws, await begin(ws, name="b", size=len(second)))
    await a.send_all(first, 0, 100_000)
    await b.send_all(second, 0, 100_000)
    await a.drain()
    await b.drain()
    await a.send_all(first)
    await b.send_all(second)
    done_a = await a.end()
    done_b = await b.end()
    for done, data in ((done_a, first), (done_b, second)):
        response = await client.get(done["url"], headers=alice.headers)
        assert await response.read() == data
    await ws.close()


# -- resuming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("wait_for_server", [False, True], ids=["takeover", "after-pause"])
async def test_resume_after_a_dropped_connection(
    client: Any, db: Any, tmp_path: Path, alice: Account, wait_for_server: bool
) -> None:
    data = os.urandom(2 * MB + 12345)
    digest = hashlib.sha256(data).hexdigest()
    half = len(data) // 2
    ws = await connect(client, alice)
    ready = await begin(ws, name="big.bin", size=len(data), sha256=digest)
    upload_id = ready["upload_id"]
    sender = Sender(ws, ready)
    await sender.send_all(data, 0, half)
    acked = sender.acked
    abort_socket(ws)

    if wait_for_server:  # the server notices the drop and records the progress

        async def recorded() -> bool:
            row = await file_row(db, upload_id)
            return row is not None and row["received"] > 0

        await eventually(recorded)

    again = await connect(client, alice)
    ready = await begin(again, upload_id=upload_id, name="big.bin", size=len(data))
    assert ready["upload_id"] == upload_id
    partial = stored_path(tmp_path, upload_id, partial=True)
    assert ready["offset"] == partial.stat().st_size
    assert acked <= ready["offset"] <= half
    assert partial.read_bytes() == data[: ready["offset"]]
    sender = Sender(again, ready)
    await sender.send_all(data)
    done = await sender.end()
    assert done["sha256"] == digest
    assert done["file_id"] == upload_id
    assert stored_path(tmp_path, upload_id).read_bytes() == data
    await again.close()


async def test_resume_on_a_second_connection_takes_over(client: Any, alice: Account) -> None:
    """The old connection's chunks are refused once another connection resumed."""
    data = os.urandom(100_000)
    old = await connect(client, alice)
    ready = await begin(old, name="x", size=len(data))
    await old.send_bytes(chunk_frame(uuid.UUID(ready["upload_id"]), 0, data[:40_000]))
    await expect(old, "file.ack")
    new = await connect(client, alice)
    resumed = await begin(new, upload_id=ready["upload_id"], name="x", size=len(data))
    assert resumed["offset"] == 40_000
    await old.send_bytes(chunk_frame(uuid.UUID(ready["upload_id"]), 40_000, data[40_000:]))
    assert (await error_of(old))["code"] == "unknown_upload"
    sender = Sender(new, resumed)
    await sender.send_all(data)
    done = await sender.end()
    assert done["sha256"] == hashlib.sha256(data).hexdigest()
    await old.close()  # its pause must not disturb the finished file
    response = await client.get(done["url"], headers=alice.headers)
    assert await response.read() == data
    await new.close()


async def test_takeover_while_the_old_connection_is_still_sending(
    client: Any, tmp_path: Path, alice: Account
) -> None:
    """Chunks racing a resume: the file ends up exactly the bytes sent, in order."""
    chunk = 16 * 1024
    data = os.urandom(64 * chunk)
    digest = hashlib.sha256(data).hexdigest()
    old = await connect(client, alice)
    ready = await begin(old, name="race", size=len(data), sha256=digest)
    upload_id = uuid.UUID(ready["upload_id"])
    for offset in range(0, 32 * chunk, chunk):  # fired without waiting for acks
        await old.send_bytes(chunk_frame(upload_id, offset, data[offset : offset + chunk]))
    new = await connect(client, alice)
    resumed = await begin(new, upload_id=str(upload_id), name="race", size=len(data))
    assert resumed["offset"] % chunk == 0
    assert resumed["offset"] == stored_path(tmp_path, str(upload_id), partial=True).stat().st_size
    sender = Sender(new, resumed)
    await sender.send_all(data)
    done = await sender.end()
    assert done["sha256"] == digest
    assert stored_path(tmp_path, str(upload_id)).read_bytes() == data
    await old.close()
    await new.close()


async def test_resume_on_the_same_connection(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    data = os.urandom(50_000)
    ready = await begin(ws, name="x", size=len(data))
    sender = Sender(ws, ready)
    await sender.send_all(data, 0, 20_000)
    await sender.drain()
    again = await begin(ws, upload_id=ready["upload_id"], name="x", size=len(data))
    assert again["offset"] == 20_000
    sender = Sender(ws, again)
    await sender.send_all(data)
    assert (await sender.end())["sha256"] == hashlib.sha256(data).hexdigest()
    await ws.close()


async def test_unfinished_file_is_not_downloadable(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    ready = await begin(ws, name="x", size=10)
    await ws.send_bytes(chunk_frame(uuid.UUID(ready["upload_id"]), 0, b"12345"))
    await expect(ws, "file.ack")
    response = await client.get(f"/realtime/files/{ready['upload_id']}", headers=alice.headers)
    assert response.status == 404
    await ws.close()


async def test_upload_id_in_any_spelling(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    ready = await begin(ws, name="x", size=3)
    upload_id = uuid.UUID(ready["upload_id"])
    await ws.send_bytes(chunk_frame(upload_id, 0, b"abc"))
    await expect(ws, "file.ack")
    await ws.send_json({"type": "file.end", "upload_id": upload_id.hex.upper()})
    assert (await expect(ws, "file.done"))["file_id"] == str(upload_id)
    await ws.close()


# -- aborting ---------------------------------------------------------------------------------


async def test_abort_removes_the_partial_file_and_marks_the_row(
    client: Any, db: Any, tmp_path: Path, alice: Account
) -> None:
    ws = await connect(client, alice)
    ready = await begin(ws, name="x", size=1000)
    await ws.send_bytes(chunk_frame(uuid.UUID(ready["upload_id"]), 0, b"x" * 500))
    await expect(ws, "file.ack")
    assert stored_path(tmp_path, ready["upload_id"], partial=True).exists()
    await ws.send_json({"type": "file.abort", "upload_id": ready["upload_id"], "id": 3})
    aborted = await expect(ws, "file.aborted")
    assert aborted["upload_id"] == ready["upload_id"]
    assert aborted["id"] == 3
    assert files_under(tmp_path) == []
    row = await file_row(db, ready["upload_id"])
    assert row is not None
    assert row["status"] == "aborted"
    await ws.send_bytes(chunk_frame(uuid.UUID(ready["upload_id"]), 500, b"x"))
    assert (await error_of(ws))["code"] == "unknown_upload"
    await ws.send_json(
        {"type": "file.begin", "upload_id": ready["upload_id"], "name": "x", "size": 1000}
    )
    assert (await error_of(ws))["code"] == "upload_finished"
    await still_answers(ws)
    await ws.close()


# -- hostile names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "/etc/shadow",
        "a\x00b\r\nContent-Type: text/html\x1b[31m",
        "\u202eexe.txt",
        "..",
        " ",
        '"quoted"; filename=evil.sh',
        "résumé ✓.pdf",
        "x" * 255,
    ],
)
async def test_hostile_names_are_made_safe(
    client: Any, tmp_path: Path, alice: Account, name: str
) -> None:
    ws = await connect(client, alice)
    ready = await begin(ws, name=name, size=4)
    sender = Sender(ws, ready)
    await sender.send_all(b"data")
    done = await sender.end()
    stored = done["name"]
    assert stored
    assert len(stored) <= 255
    assert "/" not in stored and "\\" not in stored
    assert all(ch.isprintable() for ch in stored)
    assert not stored.startswith(".")
    assert [p.relative_to(tmp_path) for p in files_under(tmp_path)] == [
        stored_path(tmp_path, done["file_id"]).relative_to(tmp_path)
    ]
    response = await client.get(done["url"], headers=alice.headers)
    assert response.status == 200
    assert await response.read() == b"data"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.count('"') in (0, 2)
    await ws.close()


async def test_a_thousand_character_name_is_refused_or_shortened(
    client: Any, tmp_path: Path, alice: Account
) -> None:
    ws = await connect(client, alice)
    await ws.send_json({"type": "file.begin", "name": "n" * 1000, "size": 1})
    frame = await ws.receive_json(timeout=5)
    if frame["type"] == "error":
        assert frame["code"] == "invalid"
        assert files_under(tmp_path) == []
    else:
        assert frame["type"] == "file.ready"
        sender = Sender(ws, frame)
        await sender.send_all(b"x")
        assert len((await sender.end())["name"]) <= 255
    await still_answers(ws)
    await ws.close()


# -- memory -----------------------------------------------------------------------------------


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _chunks(total: int, size: int) -> Iterator[bytes]:
    block = os.urandom(size)
    for index in range(0, total, size):
        piece = block[: min(size, total - index)]
        yield index.to_bytes(8, "big") + piece[8:]


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_64_mb_upload_does_not_sit_in_memory(
    client: Any, tmp_path: Path, alice: Account
) -> None:
    total = 64 * MB
    ws = await connect(client, alice)
    warm = await begin(ws, name="warm", size=MB)  # threads, buffers, pools warmed up
    sender = Sender(ws, warm)
    for piece in _chunks(MB, warm["chunk_size"]):
        await sender.send(piece)
    await sender.end()

    ready = await begin(ws, name="big", size=total)
    sender = Sender(ws, ready)
    hasher = hashlib.sha256()
    before = _status("VmRSS")
    peak_tracked = _reset_peak()
    started = time.perf_counter()
    for piece in _chunks(total, ready["chunk_size"]):
        hasher.update(piece)
        await sender.send(piece)
    done = await sender.end()
    elapsed = time.perf_counter() - started
    after = _status("VmRSS")
    peak = _status("VmHWM") if peak_tracked else after
    print(
        f"64 MB over WS: {total / MB / elapsed:.1f} MB/s; RSS {before / MB:.1f} -> "
        f"{after / MB:.1f} MB, peak {peak / MB:.1f} MB"
    )
    assert done["sha256"] == hasher.hexdigest()
    assert done["size"] == total
    assert after - before < 32 * MB
    assert peak - before < 32 * MB
    assert stored_path(tmp_path, done["file_id"]).stat().st_size == total
    await ws.close()
