"""Resumable file uploads: chunks go to disk as they arrive (never held whole in memory),
the SHA-256 is computed on the way, metadata lives in PostgreSQL.

    UPLOAD_DIR/<2 hex>/<file id>.part   while uploading (its size is the resume offset)
    UPLOAD_DIR/<2 hex>/<file id>        once complete and verified

Disk work (write, hash, fsync, rename) runs in a worker thread; each chunk opens the
partial file for appending and closes it again, so no file handle outlives a chunk (a
dropped or cancelled connection leaks nothing). A file has at most one active upload:
resuming it from a new connection takes it over from the old one, whose chunks are refused
from then on. One lock per file orders chunks, takeover, end and abort.

Cleanup (abort, pause, the end of an upload) runs shielded from cancellation: aiohttp may
cancel a handler when its client disconnects, and half-done cleanup would leave the partial
file and the row disagreeing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import uuid
import weakref
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from server.kernel.errors import DatabaseUnavailable
from server.kernel.principal import Principal, Role
from server.kernel.realtime_errors import UploadError
from server.kernel.settings import Settings
from storage import files
from storage.db import Pool, Row, transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

MIME = re.compile(r"^[\w.+-]{1,127}/[\w.+-]{1,127}$", re.ASCII)
DEFAULT_MIME = "application/octet-stream"
MAX_NAME = 255


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
    lock: asyncio.Lock
    hasher: Any = field(default_factory=hashlib.sha256)
    closed: bool = False


class Uploads:
    def __init__(self, settings: Settings, pool: Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.root = Path(settings.UPLOAD_DIR).resolve()
        self._active: dict[uuid.UUID, Upload] = {}
        # every Upload object of a file shares its lock (the old one during a takeover too)
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._cleanup: set[asyncio.Task[Any]] = set()

    def path(self, file_id: uuid.UUID, *, partial: bool = False) -> Path:
        name = f"{file_id}.part" if partial else str(file_id)
        return self.root / file_id.hex[:2] / name

    @staticmethod
    def key(upload_id: str) -> str:
        """An upload id in its canonical spelling (as file.ready gives it)."""
        try:
            return str(uuid.UUID(upload_id))
        except ValueError:
            return upload_id

    def _lock(self, file_id: uuid.UUID) -> asyncio.Lock:
        lock = self._locks.get(file_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[file_id] = lock
        return lock

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(work)
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)
        return task

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to the end even if the caller is cancelled meanwhile."""
        return await asyncio.shield(self._spawn(work))

    async def sweep(self) -> int:
        """Discard uploads left unfinished for UPLOAD_STALE_AFTER seconds (their rows are
        aborted, their partial files deleted, their quota freed); returns how many."""
        async with transaction(self.pool) as conn:
            stale = await files.stale_uploads(conn, self.settings.UPLOAD_STALE_AFTER)
        for file_id in stale:
            if file_id in self._active:
                continue  # someone is still sending it
            await asyncio.to_thread(self.path(file_id, partial=True).unlink, missing_ok=True)
            async with transaction(self.pool) as conn:
                await files.abort(conn, file_id)
        if stale:
            log.info("discarded %d abandoned uploads", len(stale))
        return len(stale)

    async def close(self) -> None:
        """On shutdown: let cleanup that is under way finish."""
        if self._cleanup:
            await asyncio.gather(*self._cleanup, return_exceptions=True)

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
        with _database():
            return await self._create(
                principal, name=name, mime=mime, size=size, sha256=sha256, channel=channel
            )

    async def _create(
        self,
        principal: Principal,
        *,
        name: str,
        mime: str,
        size: int,
        sha256: str | None,
        channel: str | None,
        fit_quota: bool = False,
    ) -> Upload:
        """Reserve `size` bytes of the owner's quota (uploads in progress count in full) and
        create the row and the empty partial file. `fit_quota` (for uploads whose size is
        only an upper bound) shrinks the reservation to what the quota leaves instead."""
        file_id = uuid.uuid4()
        name = safe_name(name)
        mime = safe_mime(mime)
        quota = self.settings.UPLOAD_QUOTA
        async with transaction(self.pool) as conn:
            await files.lock_owner(conn, principal.user_id)  # concurrent begins queue here
            if await files.active_count(conn, principal.user_id) >= self.settings.UPLOAD_MAX_ACTIVE:
                raise UploadError(
                    "too_many_uploads",
                    "finish or abort your uploads first "
                    f"(at most {self.settings.UPLOAD_MAX_ACTIVE})",
                )
            used = await files.used_bytes(conn, principal.user_id)
            if fit_quota:
                size = max(0, min(size, quota - used))
            if used + size > quota:
                raise UploadError(
                    "quota_exceeded",
                    "this upload would exceed your storage quota",
                    {"quota": quota, "used": used},
                )
            await files.create(
                conn,
                file_id=file_id,
                owner_id=principal.user_id,
                name=name,
                mime=mime,
                size=size,
                expected_sha256=sha256,
                channel=channel,
            )
        try:
            await asyncio.to_thread(self._create_partial, file_id)
        except OSError as error:
            log.error("could not create the partial file of upload %s: %s", file_id, error)
            await self._shielded(self._mark_aborted(file_id))
            raise UploadError("unavailable", "could not store the file; try again") from None
        upload = Upload(
            file_id,
            principal.user_id,
            name,
            mime,
            size,
            channel,
            sha256,
            0,
            self._lock(file_id),
        )
        self._active[file_id] = upload
        return upload

    async def resume(self, principal: Principal, upload_id: str) -> Upload:
        try:
            file_id = uuid.UUID(upload_id)
        except ValueError:
            raise UploadError("unknown_upload", "no such upload") from None
        with _database():
            return await self._shielded(self._take_over(principal, file_id))

    async def _take_over(self, principal: Principal, file_id: uuid.UUID) -> Upload:
        lock = self._lock(file_id)
        async with lock:  # waits for a chunk, end or abort under way on the old connection
            async with transaction(self.pool) as conn:
                row = await files.get(conn, file_id)
            if row is None or row["owner_id"] != principal.user_id:
                raise UploadError("unknown_upload", "no such upload")
            if row["status"] != "uploading":
                raise UploadError("upload_finished", f"this upload is {row['status']}")
            previous = self._active.pop(file_id, None)
            if previous is not None:  # the old connection's copy stops here
                previous.closed = True
            try:
                received, hasher = await asyncio.to_thread(self._measure, file_id)
            except FileNotFoundError:
                log.warning("upload %s lost its partial file; marking it aborted", file_id)
                await self._mark_aborted(file_id)
                raise UploadError(
                    "upload_finished", "this upload is aborted (its data is gone)"
                ) from None
            if received > row["size"]:  # cannot happen through write(); refuse to guess
                raise UploadError("upload_finished", "this upload is damaged; start again")
            upload = Upload(
                file_id,
                row["owner_id"],
                row["name"],
                row["mime"],
                row["size"],
                row["channel"],
                row["expected_sha256"],
                received,
                lock,
                hasher,
            )
            self._active[file_id] = upload
            return upload

    def _create_partial(self, file_id: uuid.UUID) -> None:
        path = self.path(file_id, partial=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("xb").close()

    def _measure(self, file_id: uuid.UUID) -> tuple[int, Any]:
        """The partial file's size and the hash of what it holds."""
        hasher = hashlib.sha256()
        size = 0
        with self.path(file_id, partial=True).open("rb") as existing:
            while block := existing.read(1024 * 1024):
                hasher.update(block)
                size += len(block)
        return size, hasher

    # -- chunks ------------------------------------------------------------------------------

    def current(self, upload: Upload) -> bool:
        return not upload.closed and self._active.get(upload.file_id) is upload

    def _check_current(self, upload: Upload) -> None:
        if not self.current(upload):
            raise UploadError("unknown_upload", "this upload is no longer active here")

    async def write(self, upload: Upload, offset: int, data: memoryview) -> int:
        """Append a chunk that starts at `offset`; return the new offset. Shielded: a chunk
        half-written when its connection is cancelled would leave the file longer than
        the offset everyone else believes."""
        return await self._shielded(self._write(upload, offset, data))

    async def _write(self, upload: Upload, offset: int, data: memoryview) -> int:
        async with upload.lock:
            self._check_current(upload)
            if offset != upload.received:
                raise UploadError(
                    "offset_mismatch",
                    f"expected a chunk at offset {upload.received}, got {offset}",
                    {"expected": upload.received},
                )
            if upload.received + len(data) > upload.size:
                raise UploadError("too_large", "chunk goes past the declared size")
            await self._append(upload, data)
            return upload.received

    async def _append(self, upload: Upload, data: memoryview) -> None:
        """Under the upload's lock. A failed write leaves the file's true content unknown:
        the upload stops here and a resume (which measures the file) carries on."""
        path = self.path(upload.file_id, partial=True)
        try:
            await asyncio.to_thread(_append, path, upload.hasher, data)
        except OSError as error:
            upload.closed = True
            if self._active.get(upload.file_id) is upload:
                del self._active[upload.file_id]
            log.error("could not write upload %s: %s", upload.file_id, error)
            raise UploadError(
                "unavailable", "could not store the chunk; resume the upload"
            ) from None
        upload.received += len(data)

    async def _append_checked(self, upload: Upload, data: memoryview) -> None:
        async with upload.lock:
            self._check_current(upload)
            await self._append(upload, data)

    async def finish(self, upload: Upload) -> Row:
        with _database():
            return await self._shielded(self._finish(upload))

    async def _finish(self, upload: Upload) -> Row:
        async with upload.lock:
            self._check_current(upload)
            if upload.received != upload.size:
                raise UploadError(
                    "incomplete",
                    f"received {upload.received} of {upload.size} bytes",
                    {"expected": upload.received},
                )
            digest = upload.hasher.hexdigest()
            if upload.expected_sha256 is not None and digest != upload.expected_sha256:
                await self._discard(upload)
                raise UploadError(
                    "sha256_mismatch",
                    "the file's SHA-256 differs; the upload is discarded",
                    {"sha256": digest},
                )
            del self._active[upload.file_id]
            upload.closed = True
            partial = self.path(upload.file_id, partial=True)
            await asyncio.to_thread(_sync, partial)
            # the row first: if the database fails, the partial file is still there and
            # the upload can be resumed (at its end) and ended again
            async with transaction(self.pool) as conn:
                row = await files.complete(conn, upload.file_id, digest)
            if row is None:  # aborted meanwhile (from another node, or by an operator)
                await asyncio.to_thread(partial.unlink, missing_ok=True)
                raise UploadError("upload_finished", "this upload was aborted meanwhile")
            await asyncio.to_thread(partial.replace, self.path(upload.file_id))
            return row

    async def abort(self, upload: Upload) -> None:
        async def aborting() -> None:
            async with upload.lock:
                await self._discard(upload)

        with _database():
            await self._shielded(aborting())

    async def _discard(self, upload: Upload) -> None:
        """Under the lock: the partial file goes, the row is marked aborted. Whichever
        connection holds the upload now loses it too."""
        upload.closed = True
        active = self._active.pop(upload.file_id, None)
        if active is not None:
            active.closed = True
        await asyncio.to_thread(self.path(upload.file_id, partial=True).unlink, missing_ok=True)
        await self._mark_aborted(upload.file_id)

    async def _mark_aborted(self, file_id: uuid.UUID) -> None:
        async with transaction(self.pool) as conn:
            await files.abort(conn, file_id)

    async def pause(self, upload: Upload) -> None:
        """The connection went away: remember the progress (resuming measures the partial
        file anyway, so a failure here is only logged). Returns at once, without
        suspending: it runs in a connection's `finally`, where any await may be cancelled
        and would cut the rest of that cleanup short. A resume waits for it (the lock)."""
        self._spawn(self._pause(upload))

    async def _pause(self, upload: Upload) -> None:
        async with upload.lock:
            if upload.closed or self._active.get(upload.file_id) is not upload:
                return
            upload.closed = True
            del self._active[upload.file_id]
            try:
                await asyncio.to_thread(_sync, self.path(upload.file_id, partial=True))
                async with transaction(self.pool) as conn:
                    await files.progress(conn, upload.file_id, upload.received)
            except Exception as error:
                log.warning("could not record the progress of upload %s: %s", upload.file_id, error)

    # -- HTTP multipart ----------------------------------------------------------------------

    async def receive_stream(
        self,
        principal: Principal,
        reader: Any,
        *,
        name: str,
        mime: str,
        channel: str | None,
        limit: int,
    ) -> Upload:
        """Write an HTTP body part to disk as it arrives (size unknown in advance: the
        reservation is `limit`, or what the quota leaves if that is less). The upload is
        left unfinished: the caller ends it (`finish`) once the whole body proved sound,
        or aborts it. On failure it is aborted here."""
        limit = min(limit, self.settings.UPLOAD_MAX_SIZE)
        with _database():
            upload = await self._create(
                principal,
                name=name,
                mime=mime,
                size=limit,
                sha256=None,
                channel=channel,
                fit_quota=True,
            )
        try:
            while chunk := await reader.read_chunk(self.settings.UPLOAD_CHUNK_SIZE):
                if upload.received + len(chunk) > upload.size:
                    if upload.size < limit:
                        raise UploadError(
                            "quota_exceeded",
                            "this upload would exceed your storage quota",
                            {"quota": self.settings.UPLOAD_QUOTA},
                        )
                    raise UploadError("too_large", f"files may be at most {limit} bytes")
                await self._shielded(self._append_checked(upload, memoryview(chunk)))
            with _database():
                async with transaction(self.pool) as conn:
                    await files.set_size(conn, upload.file_id, upload.received)
            upload.size = upload.received
        except BaseException:
            await self.abort(upload)
            raise
        return upload

    def can_read(self, principal: Principal, row: Row, may_subscribe: Any) -> bool:
        if row["owner_id"] == principal.user_id or principal.is_at_least(Role.admin):
            return True
        return bool(row["channel"]) and bool(may_subscribe(row["channel"]))


@contextlib.contextmanager
def _database() -> Iterator[None]:
    """A database outage is an upload error the client may retry, not a crash."""
    try:
        yield
    except DatabaseUnavailable:
        raise UploadError("unavailable", "storage is unavailable; try again shortly") from None


def _append(path: Path, hasher: Any, data: memoryview) -> None:
    with path.open("ab") as handle:
        handle.write(data)
    hasher.update(data)


def _sync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def safe_name(name: str) -> str:
    """A display name without path separators, control or format characters, and not
    starting with a dot; at most 255 characters."""
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch not in "/\\")
    return cleaned.strip(" .")[:MAX_NAME].rstrip(" ") or "file"


def safe_mime(mime: str | None) -> str:
    """`type/subtype` (parameters dropped), or application/octet-stream."""
    value = (mime or "").split(";", 1)[0].strip().lower()
    return value if MIME.match(value) else DEFAULT_MIME


uploads_key: web.AppKey[Uploads] = web.AppKey("uploads", Uploads)
