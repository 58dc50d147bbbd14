"""One WebSocket client's file transfers in progress, by upload id, made on its first
`file.begin`. The upload service (server/files/uploads.py) keeps the bytes and the rules; a
client only knows its own uploads, paused when it goes so that they can be resumed."""

from __future__ import annotations

from server.files.upload import Upload
from server.files.uploads import Uploads
from server.kernel.realtime_errors import UploadError


class Transfers:
    __slots__ = ("_active", "uploads")

    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads
        self._active: dict[str, Upload] = {}

    def add(self, upload: Upload) -> None:
        self._active[str(upload.file_id)] = upload

    def get(self, upload_id: str) -> Upload:
        """This client's upload with this id (any spelling of the UUID)."""
        key = self.uploads.key(upload_id)
        upload = self._active.get(key)
        if upload is None or upload.closed:
            self._active.pop(key, None)
            raise UploadError(
                "unknown_upload", "no upload with this id on this connection; send file.begin"
            )
        return upload

    def discard(self, upload: Upload) -> None:
        self._active.pop(str(upload.file_id), None)

    async def pause(self) -> None:
        """The client is going: pause its unfinished uploads (they can be resumed)."""
        for upload in self._active.values():
            await self.uploads.pause(upload)
        self._active.clear()
