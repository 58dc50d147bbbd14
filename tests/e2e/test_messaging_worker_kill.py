"""`python -m workers` as a real process, killed with SIGKILL in the middle of a batch of 300
messages and started again: every message is processed, none twice (unacked messages are
redelivered; the inbox drops the ones whose effect was already committed)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_messaging_support import ROOT, cli_env, count, marker
from tests.support.accounts import Account
from tests.support.processes import dies_with_parent
from tests.support.waiting import eventually
from workers.client import MessageClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("clean_tables")]

MESSAGES = 300


async def start_worker(settings: Any, log: Path) -> asyncio.subprocess.Process:
    env = {**cli_env(settings), "WORKER_PREFETCH": "2", "LOG_LEVEL": "INFO"}
    with log.open("ab") as output:  # the child keeps its own descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workers",
            cwd=ROOT,
            preexec_fn=dies_with_parent,
            env=env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )


async def stop(process: asyncio.subprocess.Process, sig: signal.Signals) -> int:
    if process.returncode is None:
        process.send_signal(sig)
    return await asyncio.wait_for(process.wait(), timeout=30)


@pytest.mark.timeout(240)
async def test_a_worker_killed_mid_batch_loses_and_repeats_nothing(
    client: Any, alice: Account, db: Any, settings: Any, tmp_path: Path
) -> None:
    log = tmp_path / "workers.log"
    prefix = marker("kill")
    async with MessageClient(settings).session() as message_client:
        ids = [
            str(await message_client.send_user_notification(alice.id, f"{prefix}-{n}"))
            for n in range(MESSAGES)
        ]

    async def in_outbox() -> int:
        sql = "SELECT count(*) FROM outbox WHERE message_id = ANY(%(ids)s::uuid[])"
        return await count(db, sql, ids=ids)

    async def published() -> bool:
        return await in_outbox() == 0

    async def done() -> int:
        sql = "SELECT count(*) FROM processed_messages WHERE message_id = ANY(%(ids)s::uuid[])"
        return await count(db, sql, ids=ids)

    await eventually(published, timeout=30)  # all 300 wait in the queue, no worker yet

    first = await start_worker(settings, log)
    try:

        async def under_way() -> bool:
            return await done() >= 20

        await eventually(under_way, timeout=60, interval=0.01)
        assert await stop(first, signal.SIGKILL) == -signal.SIGKILL
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    at_kill = await done()
    assert at_kill < MESSAGES, "the worker finished before it was killed: nothing was tested"

    second = await start_worker(settings, log)
    try:

        async def finished() -> bool:
            assert second.returncode is None, f"the worker exited:\n{log.read_text()[-4000:]}"
            return await done() == MESSAGES

        try:
            await eventually(finished, timeout=120, interval=0.5)
        except AssertionError as error:
            raise AssertionError(f"{error}; worker output:\n{log.read_text()[-4000:]}") from None
        await asyncio.sleep(1)  # a duplicate delivery, were there one, would land now
        assert await stop(second, signal.SIGTERM) == 0
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()

    stored = await count(
        db, "SELECT count(*) FROM notifications WHERE message_id = ANY(%(ids)s::uuid[])", ids=ids
    )
    distinct = await count(
        db,
        "SELECT count(DISTINCT message_id) FROM notifications "
        "WHERE message_id = ANY(%(ids)s::uuid[])",
        ids=ids,
    )
    assert (stored, distinct) == (MESSAGES, MESSAGES)
    assert await done() == MESSAGES
