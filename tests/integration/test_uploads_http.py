"""POST /realtime/binary/upload: multipart/form-data streamed to disk, with and without a
`channel` field; the answer, the announcement, the download, the size and quota limits,
and what a failed or abandoned upload leaves (nothing but an aborted row). Refused and odd
input: test_uploads_http_input.py."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_realtime_ws import connect, next_of
from tests.integration.test_uploads_ws import (
    MB,
    app,  # noqa: F401  (the fixture: uploads go to tmp_path)
    file_row,
    files_under,
    stored_path,
    upload_client,
)
from tests.support.accounts import Account
from tests.support.uploads import URL, form, post, streamed
from tests.support.waiting import eventually


async def test_upload_without_a_channel(
    client: Any, tmp_path: Path, alice: Account, bob: Account
) -> None:
    data = os.urandom(3 * MB + 7)
    response = await post(client, alice, form(data))
    assert response.status == 201, await response.text()
    out = await response.json()
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    assert out["size"] == len(data)
    assert out["name"] == "report.pdf"
    assert out["mime"] == "application/pdf"
    assert out["channel"] is None
    assert out["url"] == f"/realtime/files/{out['file_id']}"
    assert stored_path(tmp_path, out["file_id"]).read_bytes() == data
    assert files_under(tmp_path) == [stored_path(tmp_path, out["file_id"])]

    download = await client.get(out["url"], headers=alice.headers)
    assert download.status == 200
    assert await download.read() == data
    assert download.headers["Content-Type"] == "application/pdf"
    ranged = await client.get(out["url"], headers={**alice.headers, "Range": "bytes=100-199"})
    assert ranged.status == 206
    assert await ranged.read() == data[100:200]
    assert (await client.get(out["url"], headers=bob.headers)).status == 404


async def test_upload_with_a_channel_is_announced(
    client: Any, alice: Account, bob: Account
) -> None:
    listener = await connect(client, bob)
    await listener.send_json({"type": "subscribe", "channel": "public:drop"})
    await next_of(listener, "subscribed")
    data = os.urandom(100_000)
    response = await post(client, alice, form(data, channel="public:drop"))
    assert response.status == 201, await response.text()
    out = await response.json()
    assert out["channel"] == "public:drop"
    publication = await next_of(listener, "publication")
    assert publication["data"]["kind"] == "file"
    assert publication["data"]["file_id"] == out["file_id"]
    assert publication["data"]["sha256"] == out["sha256"]
    assert publication["data"]["size"] == len(data)
    download = await client.get(out["url"], headers=bob.headers)  # may subscribe: may read
    assert download.status == 200
    assert await download.read() == data
    await listener.close()


async def test_chunked_upload_without_content_length(
    aiohttp_client: Any, tmp_path: Path, alice: Account
) -> None:
    """The size is unknown until the end; a quota far below UPLOAD_MAX_SIZE still fits."""
    client = await upload_client(aiohttp_client, tmp_path, UPLOAD_QUOTA=MB)
    data = os.urandom(300_000)
    response = await post(client, alice, form(streamed(data)))
    assert response.status == 201, await response.text()
    out = await response.json()
    assert out["size"] == len(data)
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    download = await client.get(out["url"], headers=alice.headers)
    assert await download.read() == data


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversized_body_is_413(
    aiohttp_client: Any, db: Any, tmp_path: Path, alice: Account, chunked: bool
) -> None:
    client = await upload_client(aiohttp_client, tmp_path, UPLOAD_MAX_SIZE=64 * 1024)
    data = os.urandom(200_000)
    response = await post(client, alice, form(streamed(data) if chunked else data))
    assert response.status == 413
    error = (await response.json())["error"]
    assert error["code"] == "too_large"
    assert files_under(tmp_path) == []
    small = os.urandom(60_000)
    response = await post(client, alice, form(streamed(small) if chunked else small))
    assert response.status == 201, await response.text()


async def test_quota_exceeded_is_413(aiohttp_client: Any, tmp_path: Path, alice: Account) -> None:
    client = await upload_client(aiohttp_client, tmp_path, UPLOAD_QUOTA=150_000)
    response = await post(client, alice, form(os.urandom(100_000)))
    assert response.status == 201, await response.text()
    for body in (form(os.urandom(100_000)), form(streamed(os.urandom(100_000)))):
        response = await post(client, alice, body)
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "quota_exceeded"
    assert len(files_under(tmp_path)) == 1
    response = await post(client, alice, form(os.urandom(40_000)))  # what is left still fits
    assert response.status == 201, await response.text()


async def test_failed_upload_leaves_an_aborted_row(
    aiohttp_client: Any, db: Any, tmp_path: Path, alice: Account
) -> None:
    client = await upload_client(aiohttp_client, tmp_path, UPLOAD_MAX_SIZE=1000)
    response = await post(client, alice, form(streamed(os.urandom(5000))))
    assert response.status == 413
    assert files_under(tmp_path) == []
    async with db.acquire() as raw, raw.cursor() as cursor:
        await cursor.execute("SELECT id::text, status FROM files WHERE owner_id = %s", (alice.id,))
        rows = await cursor.fetchall()
    assert [status for _, status in rows] == ["aborted"]
    row = await file_row(db, rows[0][0])
    assert row is not None and row["sha256"] is None


async def test_client_gone_mid_body_leaves_nothing(
    client: Any, db: Any, tmp_path: Path, alice: Account
) -> None:
    """The body stops halfway and the connection drops: the partial file goes, the row is
    aborted (nothing counts against the quota)."""
    boundary = "b" + uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="half.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    total = len(head) + 2 * MB + 100
    request = (
        f"POST {URL} HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {alice.access_token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {total}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request + head + os.urandom(MB))
    await writer.drain()

    async def writing() -> bool:
        return bool(files_under(tmp_path))

    await eventually(writing)  # the server is writing the part
    writer.transport.abort()

    async def cleaned_up() -> bool:
        async with db.acquire() as raw, raw.cursor() as cursor:
            await cursor.execute("SELECT status FROM files WHERE owner_id = %s", (alice.id,))
            rows = await cursor.fetchall()
        return rows == [("aborted",)] and not files_under(tmp_path)

    await eventually(cleaned_up)
    del reader
