"""POST /realtime/binary/upload with refused or odd input: not multipart (415), no file part,
bad or huge `channel` fields and malformed multipart (400, nothing stored), no credentials
(401), and hostile filenames and part content types, which are made safe, not refused."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.test_uploads_ws import (
    MB,
    app,  # noqa: F401  (the fixture: uploads go to tmp_path)
    files_under,
    stored_path,
)
from tests.support.accounts import Account
from tests.support.uploads import URL, form, post, raw_multipart


async def test_not_multipart_is_415(client: Any, alice: Account) -> None:
    response = await client.post(URL, json={"file": "x"}, headers=alice.headers)
    assert response.status == 415
    response = await client.post(
        URL,
        data=b"raw bytes",
        headers={**alice.headers, "Content-Type": "application/octet-stream"},
    )
    assert response.status == 415


async def test_missing_file_part_is_400(client: Any, tmp_path: Path, alice: Account) -> None:
    response = await post(client, alice, form(None, channel="public:x"))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "no_file"
    body = aiohttp.FormData()
    body.add_field("other", io.BytesIO(b"x" * 1000), filename="x.bin")
    response = await post(client, alice, body)
    assert response.status == 400
    assert files_under(tmp_path) == []


async def test_unauthenticated_is_401(client: Any) -> None:
    response = await client.post(URL, data=form(b"x"))
    assert response.status == 401


@pytest.mark.parametrize(
    ("channel", "code", "status"),
    [
        ("system", "forbidden", 403),  # a permission, not bad input
        ("../etc", "bad_channel", 400),
        ("c" * 5000, "bad_channel", 400),
    ],
)
async def test_bad_channel_field_is_refused(
    client: Any, tmp_path: Path, alice: Account, channel: str, code: str, status: int
) -> None:
    response = await post(client, alice, form(b"data", channel=channel))
    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    assert files_under(tmp_path) == []


async def test_huge_channel_field_is_refused(client: Any, alice: Account) -> None:
    body = aiohttp.FormData()
    body.add_field("channel", io.BytesIO(b"public:x" + b"x" * (8 * MB)))
    body.add_field("file", io.BytesIO(b"data"), filename="f")
    response = await post(client, alice, body)
    assert response.status == 400


@pytest.mark.parametrize(
    "filename",
    [
        b"../../etc/passwd",
        b"..\\..\\boot.ini",
        b"a\tb.txt",
        b"n" * 1000,
        b"..",
        "r\u00e9sum\u00e9 \u2713.pdf".encode(),
        b"\xff\xfe broken utf-8",
    ],
)
async def test_hostile_filenames(
    client: Any, tmp_path: Path, alice: Account, filename: bytes
) -> None:
    body, headers = raw_multipart(
        [
            (
                b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
                b"Content-Type: text/plain",
                b"data",
            )
        ]
    )
    response = await client.post(URL, data=body, headers={**alice.headers, **headers})
    assert response.status == 201, await response.text()
    out = await response.json()
    name = out["name"]
    assert name and len(name) <= 255
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert all(ch.isprintable() for ch in name)
    assert files_under(tmp_path) == [stored_path(tmp_path, out["file_id"])]
    download = await client.get(out["url"], headers=alice.headers)
    assert download.status == 200
    assert await download.read() == b"data"
    assert download.content_disposition is not None
    assert download.content_disposition.type == "attachment"


@pytest.mark.parametrize(
    "mime", [b"nonsense", b"text/html, text/plain", b"a/b" + b"c" * 300, b"", b"\xd1\x82/x"]
)
async def test_odd_part_content_type_falls_back(client: Any, alice: Account, mime: bytes) -> None:
    body, headers = raw_multipart(
        [
            (
                b'Content-Disposition: form-data; name="file"; filename="x.html"\r\n'
                b"Content-Type: " + mime,
                b"<script>",
            )
        ]
    )
    response = await client.post(URL, data=body, headers={**alice.headers, **headers})
    assert response.status == 201, await response.text()
    out = await response.json()
    assert out["mime"] == "application/octet-stream"
    download = await client.get(out["url"], headers=alice.headers)
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["X-Content-Type-Options"] == "nosniff"


async def test_part_content_type_with_parameters_is_kept(client: Any, alice: Account) -> None:
    response = await post(client, alice, form(b"hello", mime="text/plain; charset=utf-8"))
    assert response.status == 201, await response.text()
    assert (await response.json())["mime"] in ("text/plain", "text/plain; charset=utf-8")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"whatever", "multipart/form-data"),  # no boundary
        (b"no boundary in here", "multipart/form-data; boundary=abc"),
        (
            b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a\x01b"\r\n\r\n'
            b"x\r\n--abc--\r\n",
            "multipart/form-data; boundary=abc",
        ),
        (
            b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
            b"Content-Type: text/html; charset=utf-8\x0bx\r\n\r\nx\r\n--abc--\r\n",
            "multipart/form-data; boundary=abc",
        ),
        (
            b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
            b"truncated before the closing boundary",
            "multipart/form-data; boundary=abc",
        ),
    ],
    ids=["no-boundary", "wrong-boundary", "control-in-name", "control-in-type", "truncated"],
)
async def test_malformed_multipart_is_400(
    client: Any, tmp_path: Path, alice: Account, body: bytes, content_type: str
) -> None:
    response = await client.post(
        URL, data=body, headers={**alice.headers, "Content-Type": content_type}
    )
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]["code"] in ("bad_multipart", "no_file")
    assert files_under(tmp_path) == []
