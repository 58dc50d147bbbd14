"""Readiness under load: a check that times out while this process's event loop is far
behind says `busy`, not `down` (its answer may wait behind the load), and the log does not
send the operator to restart a service that is up. A service that does not answer while
the loop is idle is still `down`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from server.monitor import BUSY_LAG, CHECK_TIMEOUT, ServiceMonitor, ServiceStatus, monitor_key
from server.resources import amqp_key, db_key

BLOCK = CHECK_TIMEOUT + 0.5  # seconds the loop is held: longer than a check may take


@pytest.fixture
async def hung_redis() -> AsyncIterator[Redis]:
    """A Redis client of a port that accepts connections and never answers (a hung
    service)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    hung = Redis(host="127.0.0.1", port=server.sockets[0].getsockname()[1])
    yield hung
    await hung.aclose()
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
async def hung_monitor(client: Any, hung_redis: Redis) -> AsyncIterator[ServiceMonitor]:
    """A monitor whose Redis is hung (PostgreSQL and RabbitMQ are the real ones)."""
    monitor = ServiceMonitor(client.app[db_key], hung_redis, client.app[amqp_key])
    yield monitor
    monitor.lag.stop()


def hold_the_loop() -> None:
    """What a connection storm does to the loop, in one step: nothing else runs meanwhile."""
    time.sleep(BLOCK)


@contextlib.contextmanager
def redis_checked_at(monitor: ServiceMonitor, redis: Redis) -> Iterator[None]:
    checks = monitor._checks
    real = checks["redis"]
    checks["redis"] = lambda: monitor._redis(redis)
    try:
        yield
    finally:
        checks["redis"] = real


async def test_a_timeout_behind_a_busy_loop_is_busy_not_down(
    hung_monitor: ServiceMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    """Whether the service or the loop is slow cannot be told: the loop is blamed."""
    checking = asyncio.create_task(hung_monitor.check("redis"))
    await asyncio.sleep(0)  # the check has begun; then the loop is held
    asyncio.get_running_loop().call_soon(hold_the_loop)
    with caplog.at_level(logging.WARNING, logger="server.monitor"):
        status = await checking
        hung_monitor._note([status])
    assert status.state == "busy", status
    assert status.latency_ms is None
    assert "busy (its event loop" in (status.error or "")
    assert status.as_dict()["status"] == "busy"
    assert "not an outage" in caplog.text
    assert "start it with" not in caplog.text


async def test_readiness_says_the_process_is_busy(client: Any, hung_redis: Redis) -> None:
    monitor: ServiceMonitor = client.app[monitor_key]
    with redis_checked_at(monitor, hung_redis):
        asyncio.get_running_loop().call_later(0.05, hold_the_loop)
        response = await client.get("/health/ready")
        body = await response.json()
    assert response.status == 503, body
    assert "too busy to check" in body["error"]["message"]
    details = body["error"]["details"]
    assert details["down"] == [] and "redis" in details["busy"], details
    assert details["services"]["redis"]["status"] == "busy"
    assert "is down" not in body["error"]["message"]
    ready = await client.get("/health/ready")  # the loop has caught up: every service up
    assert ready.status == 200, await ready.text()


async def test_a_hung_service_on_an_idle_loop_is_down(
    hung_monitor: ServiceMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="server.monitor"):
        statuses = await hung_monitor.check_all()
    by_name = {status.name: status for status in statuses}
    assert by_name["redis"].state == "down", by_name["redis"]
    assert by_name["redis"].error == "TimeoutError"
    assert hung_monitor.lag.recent() < BUSY_LAG
    assert by_name["postgres"].state == by_name["rabbitmq"].state == "up"
    assert "redis is unavailable (TimeoutError); start it with" in caplog.text


def test_the_log_says_each_change_once(caplog: pytest.LogCaptureFixture) -> None:
    """An outage, a busy spell, the recovery, another busy spell: four lines, in order."""
    monitor = ServiceMonitor(None, None, None)  # type: ignore[arg-type]  # only the log here
    down = ServiceStatus("redis", False, None, "ConnectionError: refused")
    busy = ServiceStatus("redis", False, None, "no answer while busy", busy=True)
    up = ServiceStatus("redis", True, 1.0)
    with caplog.at_level(logging.INFO, logger="server.monitor"):
        for status in (up, down, down, busy, busy, down, up, up, busy, up):
            monitor._note([status])
    assert [record.getMessage().split(" (")[0].split(":")[0] for record in caplog.records] == [
        "redis is unavailable",
        "redis not checked",
        "redis is available again",
        "redis not checked",
    ]
