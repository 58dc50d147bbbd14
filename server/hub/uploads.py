"""Resumable file uploads: chunks go to disk as they arrive (never held whole in memory),
the SHA-256 is computed on the way, metadata lives in PostgreSQL.

    UPLOAD_DIR/<2 hex>/<file id>.part   while uploading (its size is the resume offset)
    UPLOAD_DIR/<2 hex>/<file id>        once complete and verified

Disk work (write, hash, fsync, rename) runs in a worker thread. A file has at most one
active upload: resuming it from a new connection takes it over from the old one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from server.auth.principal import Principal, Role
from server.settings import Settings
from storage import files
from storage.db import Row, transaction

log = logging.getLogger(__name__)


class UploadError(Exception):
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass(eq=False)
class Upload:
    file_id: uuid.UUID
    owner_id: int
    name: str
    mime: str
    size: int
    channel: str | None
    expected_sha256: str | None
    received: int
    handle: BinaryIO
    hasher: Any = field(default_factory=hashlib.sha256)
    closed: bool = False


class Uploads:
    def __init__(self, settings: Settings, pool: Any) -> None:
        self.settings = settings
        self.pool = pool
        self.root = Path(settings.UPLOAD_DIR).resolve()
        self._active: dict[uuid.UUID, Upload] = {}

    def path(self, file_id: uuid.UUID, *, partial: bool = False) -> Path:
        name = f"{file_id}.part" if partial else str(file_id)
        return self.root / file_id.hex[:2] / name

    # -- starting and resuming ----------------------------------------------------------------

    async def begin(
        self,
        principal: Principal,
        *,
        name: str,
        mime: str,
        size: int,
        sha256: str | None,
        channel: str | None,
    ) -> Upload:
        if size > self.settings.UPLOAD_MAX_SIZE:
            raise UploadError(
                "too_large", f"files may be at most {self.settings.UPLOAD_MAX_SIZE} bytes"
            )
        file_id = uuid.uuid4()
        async with transaction(self.pool) as conn:
            used = await files.used_bytes(conn, principal.user_id)
            if used + size > self.settings.UPLOAD_QUOTA:
                raise UploadError(
                    "quota_exceeded",
                    "this upload would exceed your storage quota",
                    {"quota": self.settings.UPLOAD_QUOTA, "used": used},
                )
            await files.create(
                conn,
                file_id=file_id,
                owner_id=principal.user_id,
                name=_safe_name(name),
                mime=mime,
                size=size,
                expected_sha256=sha256,
                channel=channel,
            )
        handle = await asyncio.to_thread(self._open, file_id)
        upload = Upload(
            file_id, principal.user_id, _safe_name(name), mime, size, channel, sha256, 0, handle
        )
        self._active[file_id] = upload
        return upload

    async def resume(self, principal: Principal, upload_id: str) -> Upload:
        try:
            file_id = uuid.UUID(upload_id)
        except ValueError:
            raise UploadError("unknown_upload", "no such upload") from None
        async with transaction(self.pool) as conn:
            row = await files.get(conn, file_id)
        if row is None or row["owner_id"] != principal.user_id:
            raise UploadError("unknown_upload", "no such upload")
        if row["status"] != "uploading":
            raise UploadError("upload_finished", f"this upload is {row['status']}")
        previous = self._active.pop(file_id, None)
        if previous is not None:  # the old connection's copy stops here
            await self._close_handle(previous)
        handle, received, hasher = await asyncio.to_thread(self._reopen, file_id)
        upload = Upload(
            file_id,
            row["owner_id"],
            row["name"],
            row["mime"],
            row["size"],
            row["channel"],
            row["expected_sha256"],
            received,
            handle,
            hasher,
        )
        self._active[file_id] = upload
        return upload

    def _open(self, file_id: uuid.UUID) -> BinaryIO:
        path = self.path(file_id, partial=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("xb")

    def _reopen(self, file_id: uuid.UUID) -> tuple[BinaryIO, int, Any]:
        """The partial file for appending, its size, and the hash of what it holds."""
        path = self.path(file_id, partial=True)
        hasher = hashlib.sha256()
        with path.open("rb") as existing:
            while block := existing.read(1024 * 1024):
                hasher.update(block)
        handle = path.open("ab")
        return handle, handle.tell(), hasher

    # -- chunks ------------------------------------------------------------------------------

    def current(self, upload: Upload) -> bool:
        return not upload.closed and self._active.get(upload.file_id) is upload

    async def write(self, upload: Upload, offset: int, data: memoryview) -> int:
        """Append a chunk that starts at `offset`; return the new offset."""
        if not self.current(upload):
            raise UploadError("unknown_upload", "this upload is no longer active here")
        if offset != upload.received:
            raise UploadError(
                "offset_mismatch",
                f"expected a chunk at offset {upload.received}, got {offset}",
                {"expected": upload.received},
            )
        if upload.received + len(data) > upload.size:
            raise UploadError("too_large", "chunk goes past the declared size")
        await asyncio.to_thread(_append, upload, data)
        upload.received += len(data)
        return upload.received

    async def finish(self, upload: Upload) -> Row:
        if not self.current(upload):
            raise UploadError("unknown_upload", "this upload is no longer active here")
        if upload.received != upload.size:
            raise UploadError(
                "incomplete",
                f"received {upload.received} of {upload.size} bytes",
                {"expected": upload.received},
            )
        digest = upload.hasher.hexdigest()
        if upload.expected_sha256 is not None and digest != upload.expected_sha256:
            await self.abort(upload)
            raise UploadError(
                "sha256_mismatch",
                "the file's SHA-256 differs; the upload is discarded",
                {"sha256": digest},
            )
        self._active.pop(upload.file_id, None)
        await self._close_handle(upload, keep=True)
        async with transaction(self.pool) as conn:
            row = await files.complete(conn, upload.file_id, digest)
        if row is None:
            raise UploadError("upload_finished", "this upload was finished or aborted elsewhere")
        return row

    async def abort(self, upload: Upload) -> None:
        self._active.pop(upload.file_id, None)
        await self._close_handle(upload)
        await asyncio.to_thread(self.path(upload.file_id, partial=True).unlink, missing_ok=True)
        async with transaction(self.pool) as conn:
            await files.abort(conn, upload.file_id)

    async def pause(self, upload: Upload) -> None:
        """The connection went away: close the file, remember the progress for resuming."""
        if self._active.get(upload.file_id) is upload:
            del self._active[upload.file_id]
        if upload.closed:
            return
        await self._close_handle(upload)
        async with transaction(self.pool) as conn:
            await files.progress(conn, upload.file_id, upload.received)

    async def _close_handle(self, upload: Upload, *, keep: bool = False) -> None:
        if upload.closed:
            return
        upload.closed = True
        await asyncio.to_thread(
            _close,
            upload.handle,
            self.path(upload.file_id, partial=True) if keep else None,
            self.path(upload.file_id),
        )

    # -- HTTP multipart ----------------------------------------------------------------------

    async def store_stream(
        self,
        principal: Principal,
        reader: Any,
        *,
        name: str,
        mime: str,
        channel: str | None,
        limit: int,
    ) -> Row:
        """Write an HTTP body part to disk as it arrives (size unknown in advance)."""
        upload = await self.begin(
            principal, name=name, mime=mime, size=limit, sha256=None, channel=channel
        )
        try:
            while chunk := await reader.read_chunk(self.settings.UPLOAD_CHUNK_SIZE):
                if upload.received + len(chunk) > limit:
                    raise UploadError("too_large", f"files may be at most {limit} bytes")
                await asyncio.to_thread(_append, upload, memoryview(chunk))
                upload.received += len(chunk)
            async with transaction(self.pool) as conn:
                await files.set_size(conn, upload.file_id, upload.received)
            upload.size = upload.received
            return await self.finish(upload)
        except BaseException:
            if not upload.closed:
                await self.abort(upload)
            raise

    def can_read(self, principal: Principal, row: Row, may_subscribe: Any) -> bool:
        if row["owner_id"] == principal.user_id or principal.is_at_least(Role.admin):
            return True
        return bool(row["channel"]) and bool(may_subscribe(row["channel"]))


def _append(upload: Upload, data: memoryview) -> None:
    upload.handle.write(data)
    upload.hasher.update(data)


def _close(handle: BinaryIO, partial: Path | None, final: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    if partial is not None:
        partial.replace(final)


def _safe_name(name: str) -> str:
    """A display name without path separators or control characters."""
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch not in "/\\")
    return cleaned.strip(" .")[:255] or "file"
