"""Uploads: the upload service the app holds (`uploads_key`), what the hub's file messages,
the HTTP upload and the sweeper call. It builds and owns its parts, which share one disk,
one table of active uploads and one shield:

    starter   Starter: begin and resume (quota, row, partial file, takeovers)
    receiver  Receiver: chunks, the end, an abort, a pause

and itself streams an HTTP body part into an upload, sweeps abandoned uploads and says
who may read a stored file."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from server.files.active import ActiveUploads
from server.files.disk import Disk
from server.files.guard import Shield, retryable_outage
from server.files.quota import release
from server.files.receiver import Receiver
from server.files.starter import Starter
from server.files.upload import Upload
from server.kernel.principal import Principal, Role
from server.kernel.realtime_errors import UploadError
from server.kernel.settings import Settings
from storage import files
from storage.db import Pool, Row, transaction

log = logging.getLogger(__name__)


class Uploads:
    def __init__(self, settings: Settings, pool: Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.disk = Disk(settings.UPLOAD_DIR)
        self.active = ActiveUploads()
        self.shield = Shield()
        self.starter = Starter(settings, pool, self.disk, self.active, self.shield)
        self.receiver = Receiver(pool, self.disk, self.active, self.shield)

    # -- one upload, from its start to its end (see starter.py and receiver.py) ---------------

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
        return await self.starter.begin(
            principal, name=name, mime=mime, size=size, sha256=sha256, channel=channel
        )

    async def resume(self, principal: Principal, upload_id: str) -> Upload:
        return await self.starter.resume(principal, upload_id)

    async def write(self, upload: Upload, offset: int, data: memoryview) -> int:
        return await self.receiver.write(upload, offset, data)

    async def finish(self, upload: Upload) -> Row:
        return await self.receiver.finish(upload)

    async def abort(self, upload: Upload) -> None:
        await self.receiver.abort(upload)

    async def pause(self, upload: Upload) -> None:
        await self.receiver.pause(upload)

    async def receive_part(
        self,
        principal: Principal,
        reader: BodyPartReader,
        *,
        name: str,
        mime: str,
        channel: str | None,
        limit: int,
    ) -> Upload:
        """An HTTP body part (POST /realtime/binary/upload) written to disk as it arrives.
        Its size is not known in advance: the reservation is `limit` (or what the quota
        leaves, if that is less), trimmed to what arrived. The upload is left unfinished:
        the caller ends it (`finish`) once the whole body proved sound, or aborts it. On
        failure it is aborted here."""
        limit = min(limit, self.settings.UPLOAD_MAX_SIZE)
        with retryable_outage():
            upload = await self.starter.create(
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
                await self.receiver.append(upload, memoryview(chunk))
            with retryable_outage():
                async with transaction(self.pool) as conn:
                    await files.set_size(conn, upload.file_id, upload.received)
            upload.size = upload.received
        except BaseException:
            await self.receiver.abort(upload)
            raise
        return upload

    # -- the stored files, and housekeeping ---------------------------------------------------

    def path(self, file_id: uuid.UUID, *, partial: bool = False) -> Path:
        return self.disk.path(file_id, partial=partial)

    @staticmethod
    def key(upload_id: str) -> str:
        """An upload id in its canonical spelling (as file.ready gives it)."""
        try:
            return str(uuid.UUID(upload_id))
        except ValueError:
            return upload_id

    async def unannounce(self, file_id: uuid.UUID) -> None:
        """A finished file whose announcement was refused (its uploader may no longer
        publish on its channel): it stays its owner's, readable by no channel's members."""
        async with transaction(self.pool) as conn:
            await files.unannounce(conn, file_id)

    def can_read(self, principal: Principal, row: Row, may_subscribe: Any) -> bool:
        if row["owner_id"] == principal.user_id or principal.is_at_least(Role.admin):
            return True
        return bool(row["channel"]) and bool(may_subscribe(row["channel"]))

    async def sweep(self) -> int:
        """Discard uploads left unfinished for UPLOAD_STALE_AFTER seconds (their rows are
        aborted, their partial files deleted, their quota freed); returns how many."""
        async with transaction(self.pool) as conn:
            stale = await files.stale_uploads(conn, self.settings.UPLOAD_STALE_AFTER)
        for file_id in stale:
            if file_id in self.active:
                continue  # someone is still sending it
            await self.disk.discard_partial(file_id)
            await release(self.pool, file_id)
        if stale:
            log.info("discarded %d abandoned uploads", len(stale))
        return len(stale)

    async def close(self) -> None:
        """On shutdown: let cleanup that is under way finish."""
        await self.shield.close()


uploads_key: web.AppKey[Uploads] = web.AppKey("uploads", Uploads)
