"""The uploads in progress on this node. A file has at most one active upload: resuming it
from a new connection takes it over from the old one, whose chunks are refused from then
on. One lock per file orders its chunks, takeover, end and abort."""

from __future__ import annotations

import asyncio
import uuid
import weakref

from server.files.upload import Upload


class ActiveUploads:
    def __init__(self) -> None:
        self._active: dict[uuid.UUID, Upload] = {}
        # every Upload object of a file shares its lock (the old one during a takeover too)
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def lock(self, file_id: uuid.UUID) -> asyncio.Lock:
        lock = self._locks.get(file_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[file_id] = lock
        return lock

    def __len__(self) -> int:
        return len(self._active)

    def __contains__(self, file_id: uuid.UUID) -> bool:
        return file_id in self._active

    def add(self, upload: Upload) -> None:
        self._active[upload.file_id] = upload

    def is_current(self, upload: Upload) -> bool:
        """True while `upload` is the file's active upload (not ended, not taken over)."""
        return not upload.closed and self._active.get(upload.file_id) is upload

    def drop(self, upload: Upload) -> None:
        """`upload`'s hold on its file ends (a newer hold of the file stays)."""
        upload.closed = True
        if self._active.get(upload.file_id) is upload:
            del self._active[upload.file_id]

    def end(self, file_id: uuid.UUID) -> None:
        """Whichever upload holds the file now loses it."""
        previous = self._active.pop(file_id, None)
        if previous is not None:
            previous.closed = True
