"""What the log says while RabbitMQ is unreachable: one warning naming host:port and that it
retries, no per-attempt ERROR from aiormq and no traceback, then one line when the broker is
back, within about a second of its return. The broker is reached through a TCP proxy that the
test stops and starts; the shared RabbitMQ keeps running."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.proxy import TcpProxy, free_port
from tests.support.waiting import eventually
from workers.broker.amqp import AmqpConnection


@contextlib.asynccontextmanager
async def running(amqp: AmqpConnection) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(amqp.run())
    try:
        yield task
    finally:
        await amqp.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def broker_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("aiormq", "workers.broker"))]


async def test_a_closed_port_logs_one_warning_and_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    amqp = AmqpConnection(f"amqp://guest:s3cret@127.0.0.1:{port}/", name="worker")
    async with running(amqp):
        await asyncio.sleep(2.5)  # attempts at about 0, 0.25, 0.75, 1.75 s
    records = broker_lines(caplog)
    assert [r.levelname for r in records] == ["WARNING"], [r.getMessage() for r in records]
    message = records[0].getMessage()
    assert f"127.0.0.1:{port}" in message
    assert "retrying" in message
    assert "s3cret" not in message
    assert records[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_outage_then_recovery_is_two_lines_and_reconnects_within_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    proxy = TcpProxy("127.0.0.1", 5672)
    amqp = AmqpConnection(f"amqp://guest:guest@127.0.0.1:{proxy.port}/", name="worker")
    try:
        async with running(amqp):
            await asyncio.sleep(4.0)  # long enough for the old backoff to reach 4 s
            await proxy.start()
            back = time.monotonic()
            await amqp.wait_connected(timeout=5.0)
            assert time.monotonic() - back < 1.5

            # Lost while connected: one warning, then one line when it is back.
            await proxy.stop()
            await eventually(lambda: asyncio.sleep(0, not amqp.is_connected), timeout=5.0)
            await asyncio.sleep(1.5)
            await proxy.start()
            await amqp.wait_connected(timeout=5.0)
    finally:
        await proxy.stop()

    records = broker_lines(caplog)  # aiormq's included: its traceback on a drop is gone too
    summary = [(r.levelname, r.getMessage()) for r in records]
    assert [level for level, _ in summary] == ["WARNING", "INFO", "WARNING", "INFO"], summary
    assert "lost its RabbitMQ connection" in summary[2][1]
    assert any(f"reachable again after {n} s" in summary[1][1] for n in (4, 5)), summary
    assert "reachable again after" in summary[3][1]
    assert all(r.exc_info is None for r in records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
