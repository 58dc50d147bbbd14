"""The WebSocket's file transfer: `file.begin` (new or resumed), chunk frames, `file.end`,
`file.abort`. The upload store (server/files/uploads.py) keeps the bytes and the rules; a
session only knows its own active uploads."""

from __future__ import annotations

import orjson
from redis.exceptions import RedisError

from server.files.upload import Upload
from server.hub import binary
from server.hub.messages import FileAbort, FileBegin, FileEnd
from server.hub.protocol import encode, error_frame
from server.hub.session_base import SessionBase
from server.kernel.realtime_errors import UploadError


class FileMessages(SessionBase):
    __slots__ = ()

    async def on_file_begin(self, message: FileBegin) -> None:
        ref = message.id if message.id is not None else "file.begin"
        principal = self.connection.principal
        if message.upload_id is not None:
            upload = await self.uploads.resume(principal, message.upload_id)
        else:
            if message.channel is not None:
                self.may_publish(message.channel, ref)
            assert message.name is not None  # the model requires both for a new upload
            assert message.size is not None
            upload = await self.uploads.begin(
                principal,
                name=message.name,
                mime=message.mime,
                size=message.size,
                sha256=message.sha256,
                channel=message.channel,
            )
        self.active_uploads[str(upload.file_id)] = upload
        self.reply(
            {
                "type": "file.ready",
                "upload_id": str(upload.file_id),
                "offset": upload.received,
                "size": upload.size,
                "chunk_size": self.settings.UPLOAD_CHUNK_SIZE,
                "window": self.settings.UPLOAD_WINDOW,
            },
            message,
        )

    async def on_chunk(self, frame: binary.Chunk) -> None:
        upload = self._upload(str(frame.upload_id))
        if len(frame.data) > self.settings.UPLOAD_CHUNK_SIZE:
            raise UploadError(
                "chunk_too_large", f"chunks are at most {self.settings.UPLOAD_CHUNK_SIZE} bytes"
            )
        offset = await self.uploads.write(upload, frame.offset, frame.data)
        self.connection.send(
            encode({"type": "file.ack", "upload_id": str(upload.file_id), "offset": offset})
        )

    async def on_file_end(self, message: FileEnd) -> None:
        upload = self._upload(message.upload_id)
        try:
            row = await self.uploads.finish(upload)
        finally:
            if upload.closed:  # done, discarded (sha256_mismatch) or taken over
                self.active_uploads.pop(str(upload.file_id), None)
        done = {
            "file_id": str(row["id"]),
            "name": row["name"],
            "mime": row["mime"],
            "size": row["size"],
            "sha256": row["sha256"],
            "url": f"/realtime/files/{row['id']}",
        }
        announced = True
        if row["channel"]:
            try:
                await self.hub.publish(
                    row["channel"], orjson.dumps({"kind": "file", **done}), self.sender
                )
            except (RedisError, OSError, TimeoutError):
                announced = False
        self.reply({"type": "file.done", **done}, message)
        if not announced:  # the file is stored all the same: say so after file.done
            self.connection.send(
                error_frame(
                    "unavailable",
                    f"the file is stored but could not be announced on {row['channel']}",
                    message.id if message.id is not None else "file.end",
                )
            )

    async def on_file_abort(self, message: FileAbort) -> None:
        upload = self._upload(message.upload_id)
        await self.uploads.abort(upload)
        self.active_uploads.pop(str(upload.file_id), None)
        self.reply({"type": "file.aborted", "upload_id": str(upload.file_id)}, message)

    def _upload(self, upload_id: str) -> Upload:
        """This connection's upload with this id (any spelling of the UUID)."""
        key = self.uploads.key(upload_id)
        upload = self.active_uploads.get(key)
        if upload is None or upload.closed:
            self.active_uploads.pop(key, None)
            raise UploadError(
                "unknown_upload", "no upload with this id on this connection; send file.begin"
            )
        return upload
