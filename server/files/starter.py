"""Starter: how an upload starts (its quota reserved, its row and its empty partial file
created) and how one resumes (a new connection takes the upload over from the one that
held it, at the offset the partial file shows). A started Upload goes on to the Receiver."""

from __future__ import annotations

import logging
import uuid

from server.files.active import ActiveUploads
from server.files.disk import Disk
from server.files.guard import Shield, retryable_outage
from server.files.quota import release, reserve
from server.files.upload import Upload, safe_mime, safe_name
from server.kernel.principal import Principal
from server.kernel.realtime_errors import UploadError
from server.kernel.settings import Settings
from storage import files
from storage.db import Pool, transaction

log = logging.getLogger(__name__)


class Starter:
    def __init__(
        self, settings: Settings, pool: Pool, disk: Disk, active: ActiveUploads, shield: Shield
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.disk = disk
        self.active = active
        self.shield = shield

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
            await self.shield.run(release(self.pool, file_id))
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
                await release(self.pool, file_id)
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
