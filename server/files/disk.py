"""Where upload bytes live on disk, and every file operation on them (run in a worker
thread, so the event loop never waits on the disk):

    UPLOAD_DIR/<2 hex>/<file id>.part   while uploading (its size is the resume offset)
    UPLOAD_DIR/<2 hex>/<file id>        once complete and verified

Each chunk opens the partial file for appending and closes it again, so no file handle
outlives a chunk (a dropped or cancelled connection leaks nothing)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

READ_BLOCK = 1024 * 1024


class Disk:
    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()

    def path(self, file_id: uuid.UUID, *, partial: bool = False) -> Path:
        name = f"{file_id}.part" if partial else str(file_id)
        return self.root / file_id.hex[:2] / name

    async def create_partial(self, file_id: uuid.UUID) -> None:
        await asyncio.to_thread(_create, self.path(file_id, partial=True))

    async def measure(self, file_id: uuid.UUID) -> tuple[int, Any]:
        """The partial file's size and the hash of what it holds (FileNotFoundError if it
        is gone)."""
        return await asyncio.to_thread(_measure, self.path(file_id, partial=True))

    async def append(self, file_id: uuid.UUID, hasher: Any, data: memoryview) -> None:
        await asyncio.to_thread(_append, self.path(file_id, partial=True), hasher, data)

    async def sync_partial(self, file_id: uuid.UUID) -> None:
        await asyncio.to_thread(_sync, self.path(file_id, partial=True))

    async def complete(self, file_id: uuid.UUID) -> None:
        """The partial file becomes the stored file."""
        await asyncio.to_thread(self.path(file_id, partial=True).replace, self.path(file_id))

    async def discard_partial(self, file_id: uuid.UUID) -> None:
        await asyncio.to_thread(self.path(file_id, partial=True).unlink, missing_ok=True)


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.open("xb").close()


def _measure(path: Path) -> tuple[int, Any]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as existing:
        while block := existing.read(READ_BLOCK):
            hasher.update(block)
            size += len(block)
    return size, hasher


def _append(path: Path, hasher: Any, data: memoryview) -> None:
    with path.open("ab") as handle:
        handle.write(data)
    hasher.update(data)


def _sync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
