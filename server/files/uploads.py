"""Uploads: the service that starts resumable uploads (begin, resume) and receives them
(Receiver); the sweep of abandoned ones. `uploads_key` holds the app's one instance."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from server.files.guard import retryable_outage
from server.files.quota import reserve
from server.files.receiver import Receiver
from server.files.upload import Upload, safe_mime, safe_name
from server.kernel.principal import Principal, Role
from server.kernel.realtime_errors import UploadError
from storage import files
from storage.db import Row, transaction

log = logging.getLogger(__name__)


class Uploads(Receiver):
    """Starts uploads (begin, resume), and receives them (Receiver); sweeps the abandoned."""

    def path(self, file_id: uuid.UUID, *, partial: bool = False) -> Path:
        return self.disk.path(file_id, partial=partial)

    @staticmethod
    def key(upload_id: str) -> str:
        """An upload id in its canonical spelling (as file.ready gives it)."""
        try:
            return str(uuid.UUID(upload_id))
        except ValueError:
            return upload_id

    async def sweep(self) -> int:
        """Discard uploads left unfinished for UPLOAD_STALE_AFTER seconds (their rows are
        aborted, their partial files deleted, their quota freed); returns how many."""
        async with transaction(self.pool) as conn:
            stale = await files.stale_uploads(conn, self.settings.UPLOAD_STALE_AFTER)
        for file_id in stale:
            if file_id in self.active:
                continue  # someone is still sending it
            await self.disk.discard_partial(file_id)
            async with transaction(self.pool) as conn:
                await files.abort(conn, file_id)
        if stale:
            log.info("discarded %d abandoned uploads", len(stale))
        return len(stale)

    async def close(self) -> None:
        """On shutdown: let cleanup that is under way finish."""
        await self.shield.close()

    def can_read(self, principal: Principal, row: Row, may_subscribe: Any) -> bool:
        if row["owner_id"] == principal.user_id or principal.is_at_least(Role.admin):
            return True
        return bool(row["channel"]) and bool(may_subscribe(row["channel"]))

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
        with retryable_outage():
            return await self.create(
                principal, name=name, mime=mime, size=size, sha256=sha256, channel=channel
            )

    async def create(
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
        """Reserve `size` bytes of the owner's quota and create the row and the empty
        partial file. `fit_quota` (for uploads whose size is only an upper bound) shrinks
        the reservation to what the quota leaves instead."""
        file_id = uuid.uuid4()
        upload = Upload(
            file_id,
            principal.user_id,
            safe_name(name),
            safe_mime(mime),
            size,
            channel,
            sha256,
            0,
            self.active.lock(file_id),
        )
        async with transaction(self.pool) as conn:
            upload.size = await reserve(conn, self.settings, upload, fit=fit_quota)
        try:
            await self.disk.create_partial(file_id)
        except OSError as error:
            log.error("could not create the partial file of upload %s: %s", file_id, error)
            await self.shield.run(self.mark_aborted(file_id))
            raise UploadError("unavailable", "could not store the file; try again") from None
        self.active.add(upload)
        return upload

    async def resume(self, principal: Principal, upload_id: str) -> Upload:
        try:
            file_id = uuid.UUID(upload_id)
        except ValueError:
            raise UploadError("unknown_upload", "no such upload") from None
        with retryable_outage():
            return await self.shield.run(self._take_over(principal, file_id))

    async def _take_over(self, principal: Principal, file_id: uuid.UUID) -> Upload:
        lock = self.active.lock(file_id)
        async with lock:  # waits for a chunk, end or abort under way on the old connection
            async with transaction(self.pool) as conn:
                row = await files.get(conn, file_id)
            if row is None or row["owner_id"] != principal.user_id:
                raise UploadError("unknown_upload", "no such upload")
            if row["status"] != "uploading":
                raise UploadError("upload_finished", f"this upload is {row['status']}")
            self.active.end(file_id)  # the old connection's copy stops here
            try:
                received, hasher = await self.disk.measure(file_id)
            except FileNotFoundError:
                log.warning("upload %s lost its partial file; marking it aborted", file_id)
                await self.mark_aborted(file_id)
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
            self.active.add(upload)
            return upload


uploads_key: web.AppKey[Uploads] = web.AppKey("uploads", Uploads)
