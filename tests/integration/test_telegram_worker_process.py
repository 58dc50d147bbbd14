"""`python -m workers` with the bots on, as a real process: it polls the (fake) Bot API, and
on SIGTERM polling stops cleanly with the rest of the worker (exit 0, nothing left over).
A multi-process test: marked e2e, so `make test-fast` skips it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_telegram import fake_telegram_running
from tests.support.processes import dies_with_parent
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-token"


async def test_sigterm_stops_polling_cleanly(settings: Any) -> None:
    async with fake_telegram_running() as fake:
        env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "POSTGRES_DB": settings.POSTGRES_DB,
            "REDIS_PREFIX": settings.REDIS_PREFIX,
            "AMQP_PREFIX": settings.AMQP_PREFIX,
            "TELEGRAM_BOTS_ENABLED": "true",
            "TELEGRAM_BOT_TOKENS": TOKEN,
            "TELEGRAM_API_SERVER": fake.url,
            "PYTHONWARNINGS": "default",  # show ResourceWarnings (unclosed sessions)
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

            async def polling() -> bool:
                return fake.methods().count("getUpdates") >= 2

            await eventually(polling, timeout=30)
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = output.decode()
    assert process.returncode == 0, text
    assert "telegram bot @test_bot is polling" in text
    assert "worker stopped" in text
    for trouble in ("Traceback", "Task was destroyed", "Unclosed", "never awaited"):
        assert trouble not in text, text
