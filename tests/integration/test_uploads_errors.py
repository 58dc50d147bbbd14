"""Bad upload input over the WebSocket: each is answered with an error frame carrying a code
(and `details` where the client needs them), and the connection keeps answering."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from server.hub.binary import chunk_frame
from tests.integration.test_realtime_ws import connect, next_of
from tests.integration.test_uploads_ws import (
    MB,
    Sender,
    app,  # noqa: F401  (the fixture: uploads go to tmp_path)
    begin,
    expect,
    file_row,
    files_under,
    still_answers,
    stored_path,
    upload_client,
)
from tests.support.accounts import Account


async def error_after(ws: Any, frame: bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(frame, bytes):
        await ws.send_bytes(frame)
    else:
        await ws.send_json(frame)
    error = await next_of(ws, "error")
    await still_answers(ws)
    return error


async def started(ws: Any, size: int = 1000, **fields: Any) -> tuple[uuid.UUID, dict[str, Any]]:
    ready = await begin(ws, name="f.bin", size=size, **fields)
    return uuid.UUID(ready["upload_id"]), ready


async def test_chunk_for_an_unknown_upload(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    error = await error_after(ws, chunk_frame(uuid.uuid4(), 0, b"abc"))
    assert error["code"] == "unknown_upload"
    await ws.close()


async def test_chunk_for_another_users_upload(client: Any, alice: Account, bob: Account) -> None:
    a = await connect(client, alice)
    upload_id, _ = await started(a)
    b = await connect(client, bob)
    error = await error_after(b, chunk_frame(upload_id, 0, b"abc"))
    assert error["code"] == "unknown_upload"
    await a.close()
    await b.close()


@pytest.mark.parametrize("offset", [0, 50, 150], ids=["repeat", "overlap", "gap"])
async def test_offset_gap_or_repeat(client: Any, alice: Account, offset: int) -> None:
    ws = await connect(client, alice)
    upload_id, _ = await started(ws)
    await ws.send_bytes(chunk_frame(upload_id, 0, b"x" * 100))
    assert (await expect(ws, "file.ack"))["offset"] == 100
    error = await error_after(ws, chunk_frame(upload_id, offset, b"y" * 10))
    assert error["code"] == "offset_mismatch"
    assert error["details"] == {"expected": 100}
    await ws.send_bytes(chunk_frame(upload_id, 100, b"z" * 10))  # the right offset still works
    assert (await expect(ws, "file.ack"))["offset"] == 110
    await ws.close()


async def test_chunk_bigger_than_chunk_size(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    upload_id, ready = await started(ws, size=MB)
    error = await error_after(ws, chunk_frame(upload_id, 0, b"x" * (ready["chunk_size"] + 1)))
    assert error["code"] == "chunk_too_large"
    await ws.send_bytes(chunk_frame(upload_id, 0, b"x" * ready["chunk_size"]))
    assert (await expect(ws, "file.ack"))["offset"] == ready["chunk_size"]
    await ws.close()


async def test_bytes_past_the_declared_size(client: Any, tmp_path: Path, alice: Account) -> None:
    ws = await connect(client, alice)
    upload_id, _ = await started(ws, size=10)
    error = await error_after(ws, chunk_frame(upload_id, 0, b"x" * 11))
    assert error["code"] == "too_large"
    assert stored_path(tmp_path, str(upload_id), partial=True).stat().st_size == 0
    await ws.close()


async def test_end_before_all_bytes(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    upload_id, _ = await started(ws, size=10)
    await ws.send_bytes(chunk_frame(upload_id, 0, b"x" * 4))
    await expect(ws, "file.ack")
    error = await error_after(ws, {"type": "file.end", "upload_id": str(upload_id)})
    assert error["code"] == "incomplete"
    await ws.send_bytes(chunk_frame(upload_id, 4, b"x" * 6))  # the upload goes on
    await expect(ws, "file.ack")
    await ws.send_json({"type": "file.end", "upload_id": str(upload_id)})
    assert (await expect(ws, "file.done"))["size"] == 10
    await ws.close()


async def test_end_or_abort_of_an_unknown_upload(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    for kind in ("file.end", "file.abort"):
        error = await error_after(ws, {"type": kind, "upload_id": str(uuid.uuid4())})
        assert error["code"] == "unknown_upload"
    error = await error_after(ws, {"type": "file.end", "upload_id": "not-a-uuid"})
    assert error["code"] == "unknown_upload"
    await ws.close()


async def test_wrong_sha256_discards_the_upload(
    client: Any, db: Any, tmp_path: Path, alice: Account
) -> None:
    ws = await connect(client, alice)
    data = os.urandom(5000)
    claimed = hashlib.sha256(b"something else").hexdigest()
    upload_id, ready = await started(ws, size=len(data), sha256=claimed)
    sender = Sender(ws, ready)
    await sender.send_all(data)
    await sender.drain()
    error = await error_after(ws, {"type": "file.end", "upload_id": str(upload_id)})
    assert error["code"] == "sha256_mismatch"
    assert error["details"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert files_under(tmp_path) == []
    row = await file_row(db, str(upload_id))
    assert row is not None
    assert row["status"] == "aborted"
    error = await error_after(ws, {"type": "file.end", "upload_id": str(upload_id)})
    assert error["code"] == "unknown_upload"
    await ws.close()
    again = await connect(client, alice)
    error = await error_after(
        again, {"type": "file.begin", "upload_id": str(upload_id), "name": "f", "size": 5000}
    )
    assert error["code"] == "upload_finished"
    await again.close()


async def test_size_over_the_maximum(aiohttp_client: Any, tmp_path: Path, alice: Account) -> None:
    client = await upload_client(aiohttp_client, tmp_path, UPLOAD_MAX_SIZE=MB)
    ws = await connect(client, alice)
    error = await error_after(ws, {"type": "file.begin", "name": "f", "size": MB + 1})
    assert error["code"] == "too_large"
    ready = await begin(ws, name="f", size=MB)  # exactly the maximum is fine
    assert ready["offset"] == 0
    assert files_under(tmp_path) == [stored_path(tmp_path, ready["upload_id"], partial=True)]
    await ws.close()


async def test_quota(aiohttp_client: Any, tmp_path: Path, alice: Account, bob: Account) -> None:
    client = await upload_client(aiohttp_client, tmp_path, UPLOAD_QUOTA=MB)
    ws = await connect(client, alice)
    first = await begin(ws, name="a", size=600_000)  # uploads in progress count in full
    error = await error_after(ws, {"type": "file.begin", "name": "b", "size": 600_000})
    assert error["code"] == "quota_exceeded"
    assert error["details"]["quota"] == MB
    assert error["details"]["used"] == 600_000
    other = await connect(client, bob)  # the quota is per user
    await begin(other, name="b", size=600_000)
    await ws.send_json({"type": "file.abort", "upload_id": first["upload_id"]})
    await expect(ws, "file.aborted")
    await begin(ws, name="b", size=600_000)  # aborted uploads give their room back
    await ws.close()
    await other.close()


async def test_quota_is_not_overrun_by_concurrent_begins(
    aiohttp_client: Any, tmp_path: Path, alice: Account
) -> None:
    client = await upload_client(aiohttp_client, tmp_path, UPLOAD_QUOTA=MB)
    sockets = [await connect(client, alice) for _ in range(6)]
    for ws in sockets:
        await ws.send_json({"type": "file.begin", "name": "f", "size": 400_000})
    answers = [await _answer(ws) for ws in sockets]
    assert answers.count("file.ready") == 2
    assert answers.count("quota_exceeded") == 4
    for ws in sockets:
        await ws.close()


async def _answer(ws: Any) -> str:
    frame = await ws.receive_json(timeout=10)
    return str(frame["type"] if frame["type"] != "error" else frame["code"])


async def test_resuming_someone_elses_upload(client: Any, alice: Account, bob: Account) -> None:
    a = await connect(client, alice)
    upload_id, _ = await started(a)
    b = await connect(client, bob)
    for candidate in (str(upload_id), str(uuid.uuid4()), "not-a-uuid"):
        error = await error_after(
            b, {"type": "file.begin", "upload_id": candidate, "name": "f", "size": 1000}
        )
        assert error["code"] == "unknown_upload"
    await a.send_bytes(chunk_frame(upload_id, 0, b"x" * 10))  # still alice's
    assert (await expect(a, "file.ack"))["offset"] == 10
    await a.close()
    await b.close()


async def test_resuming_a_finished_upload(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    upload_id, ready = await started(ws, size=3)
    sender = Sender(ws, ready)
    await sender.send_all(b"abc")
    await sender.end()
    error = await error_after(
        ws, {"type": "file.begin", "upload_id": str(upload_id), "name": "f", "size": 3}
    )
    assert error["code"] == "upload_finished"
    await ws.close()


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"name": "", "size": 1},
        {"name": "f"},
        {"name": "f", "size": -1},
        {"name": "f", "size": "ten"},
        {"name": "f", "size": 1.5},
        {"name": 5, "size": 1},
        {"name": "f", "size": 1, "mime": "not a mime"},
        {"name": "f", "size": 1, "mime": "text/html\r\nX-Evil: 1"},
        {"name": "f", "size": 1, "sha256": "abc"},
        {"name": "f", "size": 1, "sha256": "G" * 64},
        {"name": "f", "size": 1, "extra": True},
        {"name": "f", "size": 1, "upload_id": "x" * 100},
    ],
)
async def test_begin_with_invalid_fields(
    client: Any, tmp_path: Path, alice: Account, fields: dict[str, Any]
) -> None:
    ws = await connect(client, alice)
    error = await error_after(ws, {"type": "file.begin", "id": 9, **fields})
    assert error["code"] == "invalid"
    assert error["ref"] == 9
    assert files_under(tmp_path) == []
    await ws.close()


@pytest.mark.parametrize(
    ("channel", "code"),
    [("../../etc", "bad_channel"), ("system", "forbidden"), ("nope:x", "unknown_namespace")],
)
async def test_begin_on_a_channel_one_may_not_publish_to(
    client: Any, tmp_path: Path, alice: Account, channel: str, code: str
) -> None:
    ws = await connect(client, alice)
    error = await error_after(
        ws, {"type": "file.begin", "name": "f", "size": 1, "channel": channel}
    )
    assert error["code"] == code
    assert files_under(tmp_path) == []
    await ws.close()


async def test_malformed_chunk_frames(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    for frame in (b"\x01short", b"\x07" + bytes(30)):
        error = await error_after(ws, frame)
        assert error["code"] == "bad_binary"
    await ws.close()
