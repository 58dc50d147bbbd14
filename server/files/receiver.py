"""Receiver: what happens to an upload once it has started (its chunks, its end, an abort,
a pause when its connection goes away). Every step takes the file's lock and runs shielded
from cancellation (guard.py); a step on an upload that is no longer the file's active one
(taken over, ended) is refused. It shares the disk, the active uploads and the shield with
the Starter (both are parts of Uploads)."""

from __future__ import annotations

import logging

from server.files.active import ActiveUploads
from server.files.disk import Disk
from server.files.guard import Shield, retryable_outage
from server.files.quota import release
from server.files.upload import Upload
from server.kernel.realtime_errors import UploadError
from storage import files
from storage.db import Pool, Row, transaction

log = logging.getLogger(__name__)


class Receiver:
    def __init__(self, pool: Pool, disk: Disk, active: ActiveUploads, shield: Shield) -> None:
        self.pool = pool
        self.disk = disk
        self.active = active
        self.shield = shield
        self.bytes_received = 0  # every transport's upload bytes stored (for the metrics)

    # -- chunks ------------------------------------------------------------------------------

    def _check_current(self, upload: Upload) -> None:
        if not self.active.is_current(upload):
            raise UploadError("unknown_upload", "this upload is no longer active here")

    async def write(self, upload: Upload, offset: int, data: memoryview) -> int:
        """Append a chunk that starts at `offset`; return the new offset. Shielded: a chunk
        half-written when its connection is cancelled would leave the file longer than
        the offset everyone else believes."""
        return await self.shield.run(self._write(upload, offset, data))

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

    async def append(self, upload: Upload, data: memoryview) -> None:
        """Append at the end, whatever the offset (for bodies streamed in order)."""

        async def appending() -> None:
            async with upload.lock:
                self._check_current(upload)
                await self._append(upload, data)

        await self.shield.run(appending())

    async def _append(self, upload: Upload, data: memoryview) -> None:
        """Under the upload's lock. A failed write leaves the file's true content unknown:
        the upload stops here and a resume (which measures the file) carries on."""
        try:
            await self.disk.append(upload.file_id, upload.hasher, data)
        except OSError as error:
            self.active.drop(upload)
            log.error("could not write upload %s: %s", upload.file_id, error)
            raise UploadError(
                "unavailable", "could not store the chunk; resume the upload"
            ) from None
        upload.received += len(data)
        self.bytes_received += len(data)

    # -- the end -----------------------------------------------------------------------------

    async def finish(self, upload: Upload) -> Row:
        with retryable_outage():
            return await self.shield.run(self._finish(upload))

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
            self.active.drop(upload)
            await self.disk.sync_partial(upload.file_id)
            # the row first: if the database fails, the partial file is still there and
            # the upload can be resumed (at its end) and ended again
            async with transaction(self.pool) as conn:
                row = await files.complete(conn, upload.file_id, digest)
            if row is None:  # aborted meanwhile (from another node, or by an operator)
                await self.disk.discard_partial(upload.file_id)
                raise UploadError("upload_finished", "this upload was aborted meanwhile")
            await self.disk.complete(upload.file_id)
            return row

    async def abort(self, upload: Upload) -> None:
        async def aborting() -> None:
            async with upload.lock:
                await self._discard(upload)

        with retryable_outage():
            await self.shield.run(aborting())

    async def _discard(self, upload: Upload) -> None:
        """Under the lock: the partial file goes, the row is marked aborted. Whichever
        connection holds the upload now loses it too."""
        upload.closed = True
        self.active.end(upload.file_id)
        await self.disk.discard_partial(upload.file_id)
        await release(self.pool, upload.file_id)

    async def pause(self, upload: Upload) -> None:
        """The connection went away: remember the progress (resuming measures the partial
        file anyway, so a failure here is only logged). Returns at once, without
        suspending: it runs in a connection's `finally`, where any await may be cancelled
        and would cut the rest of that cleanup short. A resume waits for it (the lock)."""
        self.shield.spawn(self._pause(upload))

    async def _pause(self, upload: Upload) -> None:
        async with upload.lock:
            if not self.active.is_current(upload):
                return
            self.active.drop(upload)
            try:
                await self.disk.sync_partial(upload.file_id)
                async with transaction(self.pool) as conn:
                    await files.progress(conn, upload.file_id, upload.received)
            except Exception as error:
                log.warning("could not record the progress of upload %s: %s", upload.file_id, error)
