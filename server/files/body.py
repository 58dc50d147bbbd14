"""An HTTP body part streamed into an upload (POST /realtime/binary/upload): its size is
not known in advance, so the reservation is an upper bound trimmed to what arrived."""

from __future__ import annotations

from aiohttp import BodyPartReader

from server.files.guard import retryable_outage
from server.files.upload import Upload
from server.files.uploads import Uploads
from server.kernel.principal import Principal
from server.kernel.realtime_errors import UploadError
from storage import files
from storage.db import transaction


async def receive_part(
    uploads: Uploads,
    principal: Principal,
    reader: BodyPartReader,
    *,
    name: str,
    mime: str,
    channel: str | None,
    limit: int,
) -> Upload:
    """Write a body part to disk as it arrives (the reservation is `limit`, or what the
    quota leaves if that is less). The upload is left unfinished: the caller ends it
    (`finish`) once the whole body proved sound, or aborts it. On failure it is aborted
    here."""
    settings = uploads.settings
    limit = min(limit, settings.UPLOAD_MAX_SIZE)
    with retryable_outage():
        upload = await uploads.create(
            principal,
            name=name,
            mime=mime,
            size=limit,
            sha256=None,
            channel=channel,
            fit_quota=True,
        )
    try:
        while chunk := await reader.read_chunk(settings.UPLOAD_CHUNK_SIZE):
            if upload.received + len(chunk) > upload.size:
                if upload.size < limit:
                    raise UploadError(
                        "quota_exceeded",
                        "this upload would exceed your storage quota",
                        {"quota": settings.UPLOAD_QUOTA},
                    )
                raise UploadError("too_large", f"files may be at most {limit} bytes")
            await uploads.append(upload, memoryview(chunk))
        with retryable_outage():
            async with transaction(uploads.pool) as conn:
                await files.set_size(conn, upload.file_id, upload.received)
        upload.size = upload.received
    except BaseException:
        await uploads.abort(upload)
        raise
    return upload
