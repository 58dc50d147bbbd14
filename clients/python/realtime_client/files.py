"""Resumable file uploads over the WebSocket (used by `WSClient.send_file`).

    -> file.begin {name, mime, size, sha256?, channel?, upload_id? (to resume)}
    <- file.ready {upload_id, offset, chunk_size, window}
    -> 0x01 chunk frames from `offset`, at most `chunk_size` bytes each, never more than
       `window` bytes ahead of the last acknowledged offset
    <- file.ack {upload_id, offset} after each chunk is on the server's disk
    -> file.end {upload_id}
    <- file.done {file_id, name, mime, size, sha256, url}

When the connection drops, the client reconnects and sends file.begin with the same
upload_id; the server answers with the offset it has, and the upload continues from there.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from realtime_client.binary import chunk_frame
from realtime_client.errors import ConnectionLost, RealtimeError

Progress = Callable[[int, int], Awaitable[None] | None]
"""Called with (bytes the server has confirmed, total size), increasing each time."""


class UploadState:
    """One upload on the current connection, updated by the client's reader."""

    def __init__(self, upload_id: str, offset: int) -> None:
        self.upload_id = upload_id
        self.acked = offset
        self.error: BaseException | None = None
        self.changed = asyncio.Event()

    def ack(self, offset: int) -> None:
        if offset > self.acked:
            self.acked = offset
        self.changed.set()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.changed.set()


class Uploads:
    """A client's uploads on the current connection by upload id, and its requests waiting
    for a file.* reply (an upload's errors name no request: their ref is "file")."""

    def __init__(self) -> None:
        self.states: dict[str, UploadState] = {}
        self.waiters: set[asyncio.Future[dict[str, Any]]] = set()

    def ack(self, frame: dict[str, Any]) -> None:
        upload = self.states.get(frame.get("upload_id", ""))
        if upload is not None:
            upload.ack(int(frame["offset"]))

    def fail(self, error: BaseException) -> None:
        for future in list(self.waiters):
            if not future.done():
                future.set_exception(error)
        for upload in self.states.values():
            upload.fail(error)


class Uploader(Protocol):
    """What an upload uses of the client: `WSClient`, which imports this module (so this one
    names the parts it needs instead of importing it back)."""

    _reconnect: bool
    _timeout: float
    _files: Uploads

    async def request(
        self, frame: dict[str, Any], *, retry: bool = False, file: bool = False
    ) -> dict[str, Any]: ...

    async def _send(self, payload: str | bytes, *, wait: bool = True) -> None: ...


class _Reporter:
    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.reported = -1

    async def __call__(self, done: int) -> None:
        if self.callback is None or done <= self.reported:
            return
        self.reported = done
        result = self.callback(done, self.total)
        if inspect.isawaitable(result):
            await result


async def send_file(
    client: Uploader,
    path: Path,
    channel: str | None,
    progress: Progress | None,
    sha256: bool,
    name: str | None,
    mime: str | None,
) -> dict[str, Any]:
    size = (await asyncio.to_thread(path.stat)).st_size
    digest = await asyncio.to_thread(_sha256, path) if sha256 else None
    begin: dict[str, Any] = {
        "type": "file.begin",
        "name": name or path.name,
        "mime": mime or mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        "size": size,
    }
    if digest is not None:
        begin["sha256"] = digest
    if channel is not None:
        begin["channel"] = channel
    report = _Reporter(progress, size)
    with path.open("rb") as handle:
        while True:
            try:
                done = await _attempt(client, handle, begin, size, report)
                break
            except ConnectionLost:
                if not client._reconnect:
                    raise
                # the next file.begin (with upload_id) waits for the new connection
    if digest is not None and done.get("sha256") != digest:
        raise RealtimeError("sha256_mismatch", "the server stored different bytes", "file")
    await report(size)
    return done


async def _attempt(
    client: Uploader,
    handle: BinaryIO,
    begin: dict[str, Any],
    size: int,
    report: _Reporter,
) -> dict[str, Any]:
    """One connection's part of the upload: begin (or resume), chunks, end."""
    ready = await client.request(begin, file=True)
    upload_id = str(ready["upload_id"])
    begin["upload_id"] = upload_id  # from now on, file.begin resumes this upload
    state = UploadState(upload_id, int(ready["offset"]))
    client._files.states[upload_id] = state
    try:
        limits = int(ready["chunk_size"]), int(ready["window"])
        await _stream(client, handle, state, size, limits, report)
        await report(state.acked)
        return await client.request({"type": "file.end", "upload_id": upload_id}, file=True)
    finally:
        client._files.states.pop(upload_id, None)


async def _stream(
    client: Uploader,
    handle: BinaryIO,
    state: UploadState,
    size: int,
    limits: tuple[int, int],
    report: _Reporter,
) -> None:
    """Send chunks while the window allows, report acknowledged progress, until done."""
    chunk_size, window = limits
    sent = state.acked
    while state.acked < size:
        state.changed.clear()
        await report(state.acked)
        if state.error is not None:
            raise state.error
        length = min(chunk_size, size - sent)
        if sent < size and (sent == state.acked or sent + length - state.acked <= window):
            data = await asyncio.to_thread(_read_at, handle, sent, length)
            if len(data) != length:
                raise RealtimeError("file_changed", "the file shrank while uploading", "file")
            if state.error is not None:
                raise state.error
            await client._send(chunk_frame(state.upload_id, sent, data), wait=False)
            sent += length
            continue
        try:
            await asyncio.wait_for(state.changed.wait(), client._timeout)
        except TimeoutError:
            raise RealtimeError(
                "timeout", "the server stopped acknowledging chunks", "file"
            ) from None


def _read_at(handle: BinaryIO, offset: int, length: int) -> bytes:
    handle.seek(offset)
    return handle.read(length)


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            hasher.update(block)
    return hasher.hexdigest()
