"""Group commit (storage/coalescer.py): who is flushed with whom, and who gets which result."""

from __future__ import annotations

import asyncio

import pytest

from storage.coalescer import Coalescer


class Bad(Exception):
    pass


class Recorder:
    """A flush that records its batches, doubles numbers, fails items < 0 alone and whole
    batches holding 13, and can be held open to let items pile up."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.gate.wait()
        if 13 in items:
            raise Bad(f"batch {items} holds 13")
        return [ValueError(f"{i} < 0") if i < 0 else 2 * i for i in items]


async def test_an_idle_item_goes_out_alone_at_once() -> None:
    flush = Recorder()
    coalescer = Coalescer(flush, name="t")
    assert await asyncio.wait_for(coalescer.submit(4), 1) == 8
    assert flush.batches == [[4]]


async def test_items_submitted_together_share_one_flush() -> None:
    flush = Recorder()
    coalescer = Coalescer(flush, name="t")
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(10)))
    assert results == [2 * i for i in range(10)]
    assert flush.batches == [list(range(10))]
    assert (coalescer.flushes, coalescer.items) == (1, 10)


async def test_items_arriving_during_a_flush_ride_in_the_next_one() -> None:
    flush = Recorder()
    flush.gate.clear()
    coalescer = Coalescer(flush, name="t")
    first = asyncio.ensure_future(coalescer.submit(1))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(coalescer.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0.01)
    assert flush.batches == [[1]]  # still running; 2, 3, 4 wait
    flush.gate.set()
    assert await asyncio.gather(first, *later) == [2, 4, 6, 8]
    assert flush.batches == [[1], [2, 3, 4]]


async def test_batches_never_exceed_max_batch() -> None:
    flush = Recorder()
    coalescer = Coalescer(flush, name="t", max_batch=4)
    assert await asyncio.gather(*(coalescer.submit(i) for i in range(10))) == [
        2 * i for i in range(10)
    ]
    assert [len(batch) for batch in flush.batches] == [4, 4, 2]


async def test_an_item_error_reaches_only_its_caller() -> None:
    coalescer = Coalescer(Recorder(), name="t")
    results = await asyncio.gather(
        *(coalescer.submit(i) for i in (1, -1, 2)), return_exceptions=True
    )
    assert results[0] == 2 and results[2] == 4
    assert isinstance(results[1], ValueError)


async def test_a_flush_error_reaches_the_whole_batch_and_the_next_batch_runs() -> None:
    coalescer = Coalescer(Recorder(), name="t")
    results = await asyncio.gather(*(coalescer.submit(i) for i in (1, 13)), return_exceptions=True)
    assert all(isinstance(result, Bad) for result in results)
    assert await coalescer.submit(5) == 10


async def test_isolated_errors_split_the_batch_so_only_the_bad_item_fails() -> None:
    flush = Recorder()
    coalescer = Coalescer(flush, name="t", isolate=(Bad,))
    results = await asyncio.gather(
        *(coalescer.submit(i) for i in (1, 13, 2)), return_exceptions=True
    )
    assert results[0] == 2 and results[2] == 4
    assert isinstance(results[1], Bad)
    assert flush.batches == [[1, 13, 2], [1], [13], [2]]


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    flush = Recorder()
    flush.gate.clear()
    coalescer = Coalescer(flush, name="t")
    gone = asyncio.ensure_future(coalescer.submit(1))
    stays = asyncio.ensure_future(coalescer.submit(2))
    await asyncio.sleep(0.01)
    gone.cancel()
    flush.gate.set()
    assert await stays == 4
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_flush_returning_the_wrong_count_fails_its_callers_instead_of_hanging() -> None:
    async def short(items: list[int]) -> list[int | BaseException]:
        return items[:-1]

    coalescer = Coalescer(short, name="t")
    results = await asyncio.gather(*(coalescer.submit(i) for i in (1, 2)), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
