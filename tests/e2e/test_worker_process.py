"""`python -m workers` as a real process: on SIGTERM it stops taking messages, finishes the
job in flight, acks it and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import dies_with_parent
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("clean_tables")]

ROOT = Path(__file__).resolve().parents[2]


async def test_sigterm_lets_the_running_task_finish(user_client: Any, settings: Any) -> None:
    env = {
        **os.environ,
        "POSTGRES_DB": settings.POSTGRES_DB,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "AMQP_PREFIX": settings.AMQP_PREFIX,
        "WORKER_SHUTDOWN_TIMEOUT": "10",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        cwd=ROOT,
        preexec_fn=dies_with_parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        response = await user_client.post(
            "/tasks/example", json={"seconds": 2, "payload": "in flight"}
        )
        task_id = (await response.json())["id"]

        async def running() -> bool:
            body = await (await user_client.get(f"/tasks/{task_id}")).json()
            return bool(body["status"] == "running")

        await eventually(running, timeout=20)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode()
    assert process.returncode == 0, text
    body = await (await user_client.get(f"/tasks/{task_id}")).json()
    assert body["status"] == "succeeded", text
    assert body["result"]["echo"] == "in flight"
    assert "waiting for 1 in-flight jobs" in text
    assert "worker stopped" in text
