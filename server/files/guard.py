"""What keeps upload work whole. Cleanup (abort, pause, the end of an upload) and chunk
writes run shielded from cancellation: aiohttp may cancel a handler when its client
disconnects, and half-done work would leave the partial file and the row disagreeing. A
database outage becomes an upload error the client may retry, not a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from server.kernel.errors import DatabaseUnavailable
from server.kernel.realtime_errors import UploadError

T = TypeVar("T")


class Shield:
    """Owns the shielded tasks until they end; close() waits for those under way."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to the end even if the caller is cancelled meanwhile."""
        return await asyncio.shield(self.spawn(work))

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.contextmanager
def retryable_outage() -> Iterator[None]:
    """A database outage is an upload error the client may retry, not a crash."""
    try:
        yield
    except DatabaseUnavailable:
        raise UploadError("unavailable", "storage is unavailable; try again shortly") from None
