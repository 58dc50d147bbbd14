"""Reserving room for a new upload: a user has at most UPLOAD_MAX_ACTIVE unfinished uploads
and UPLOAD_QUOTA bytes, uploads in progress counting in full. The reservation is the file's
row; a user's reservations queue on a lock, so checking and reserving are one step. An
aborted row gives its room back (release)."""

from __future__ import annotations

import uuid

from server.files.upload import Upload
from server.kernel.realtime_errors import UploadError
from server.kernel.settings import Settings
from storage import files
from storage.db import Connection, Pool, transaction


def reservable(size: int, used: int, quota: int, *, fit: bool) -> int:
    """The bytes an upload of `size` may reserve when `used` of `quota` are taken. With
    `fit` (for a size that is only an upper bound) it shrinks to what the quota leaves
    instead of being refused."""
    if fit:
        size = max(0, min(size, quota - used))
    if used + size > quota:
        raise UploadError(
            "quota_exceeded",
            "this upload would exceed your storage quota",
            {"quota": quota, "used": used},
        )
    return size


async def reserve(conn: Connection, settings: Settings, upload: Upload, *, fit: bool) -> int:
    """Create `upload`'s row if its owner has room; return the size reserved."""
    await files.lock_owner(conn, upload.owner_id)  # concurrent begins queue here
    if await files.active_count(conn, upload.owner_id) >= settings.UPLOAD_MAX_ACTIVE:
        raise UploadError(
            "too_many_uploads",
            f"finish or abort your uploads first (at most {settings.UPLOAD_MAX_ACTIVE})",
        )
    used = await files.used_bytes(conn, upload.owner_id)
    size = reservable(upload.size, used, settings.UPLOAD_QUOTA, fit=fit)
    await files.create(
        conn,
        file_id=upload.file_id,
        owner_id=upload.owner_id,
        name=upload.name,
        mime=upload.mime,
        size=size,
        expected_sha256=upload.expected_sha256,
        channel=upload.channel,
    )
    return size


async def release(pool: Pool, file_id: uuid.UUID) -> None:
    """The upload's row is marked aborted (if it was still uploading): its room is free."""
    async with transaction(pool) as conn:
        await files.abort(conn, file_id)
