"""Group commit: many callers, one round trip.

Each caller submits one item and awaits its own result; one flusher task hands every item
waiting at that moment to `flush` in a single call (one statement, one pipeline). When idle,
an item goes out at the next turn of the event loop, alone, so nothing waits on a timer;
under load, the items that arrive while a flush runs ride together in the next one, so
batches grow with the load and the cost per item falls.

    acceptor = Coalescer(insert_many, name="accept")
    created = await acceptor.submit(row)   # from any number of concurrent requests
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]

MAX_BATCH = 500


class Coalescer(Generic[T, R]):
    """`flush(items)` returns one result per item, in order: a value, or an exception that
    only that item's caller receives. An exception raised by `flush` itself reaches every
    caller of the batch, except one of the `isolate` types: then each item of the batch is
    flushed again alone, so one bad item (a foreign key gone, say) fails only its caller."""

    def __init__(
        self,
        flush: Flush[T, R],
        *,
        name: str,
        max_batch: int = MAX_BATCH,
        isolate: tuple[type[Exception], ...] = (),
    ) -> None:
        self._flush = flush
        self._name = name
        self._max_batch = max_batch
        self._isolate = isolate
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.flushes = 0
        self.items = 0

    def stats(self) -> dict[str, float]:
        """How many batches ran, with how many items, on average: how much is shared."""
        return {
            "batches": self.flushes,
            "items": self.items,
            "mean_batch": round(self.items / self.flushes, 2) if self.flushes else 0.0,
        }

    async def submit(self, item: T) -> R:
        """The item's result once its batch has run. A caller cancelled meanwhile stops
        waiting, but its item may still be written (as with any statement in flight)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._drain(), name=self._name)
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._run(batch)
        finally:
            self._flusher = None
            for _, future in self._waiting:  # only when the flusher itself was cancelled
                future.cancel()
            self._waiting.clear()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.flushes += 1
        self.items += len(batch)
        try:
            results = await self._flush([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:
            if len(batch) > 1 and isinstance(error, self._isolate):
                for one in batch:
                    await self._run([one])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        if len(results) != len(batch):  # a bug in `flush`: never leave a caller hanging
            mismatch = RuntimeError(f"{self._name}: {len(results)} results for {len(batch)} items")
            results = [mismatch] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
