"""Helpers for POST /realtime/binary/upload tests: multipart bodies built by aiohttp, written by
hand, or streamed without a Content-Length, and the authenticated POST."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from tests.support.accounts import Account

URL = "/realtime/binary/upload"


def form(
    data: bytes | AsyncIterator[bytes] | None,
    *,
    channel: str | None = None,
    filename: str = "report.pdf",
    mime: str = "application/pdf",
) -> aiohttp.FormData:
    body = aiohttp.FormData(default_to_multipart=True)
    if channel is not None:
        body.add_field("channel", channel)
    if data is not None:
        value = io.BytesIO(data) if isinstance(data, bytes) else data
        body.add_field("file", value, filename=filename, content_type=mime)
    return body


def raw_multipart(parts: list[tuple[bytes, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A multipart body written by hand (headers a polite client would refuse to send)."""
    boundary = uuid.uuid4().hex
    body = b""
    for headers, content in parts:
        body += b"--" + boundary.encode() + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def streamed(data: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A body of unknown length: sent chunked, without Content-Length."""
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def post(client: Any, account: Account, body: Any, **kwargs: Any) -> Any:
    return await client.post(URL, data=body, headers=account.headers, **kwargs)
