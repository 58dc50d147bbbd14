"""Several brokers in RABBITMQ_URL (comma-separated): the supervisor connects to the first
that answers and, when its connection drops, moves to the next at once, with the outage
logged in two lines (lost, then connected to the other). Each "broker" is a TCP proxy to
the machine's RabbitMQ, stopped and started by the test; the broker itself keeps running."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.integration.test_broker_outage_log import broker_lines, running
from tests.support.proxy import TcpProxy, free_port
from tests.support.waiting import eventually
from workers.broker.amqp import AmqpConnection, connect_any
from workers.broker.outages import broker_address, broker_urls, quiet_connect_failures


def url(port: int, password: str = "guest") -> str:  # noqa: S107 - the test broker's
    return f"amqp://guest:{password}@127.0.0.1:{port}/"


def test_several_urls_are_split_on_commas() -> None:
    assert broker_urls(" amqp://a@h1/ ,amqp://a@h2:5673/,") == ["amqp://a@h1/", "amqp://a@h2:5673/"]
    assert broker_address("amqp://u:p@h1/,amqps://u:p@h2/") == "h1:5672, h2:5671"
    with pytest.raises(ValueError, match="no broker"):
        broker_urls(" , ")


async def test_a_dead_first_broker_is_skipped_without_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    dead = free_port()
    amqp = AmqpConnection(f"{url(dead, 's3cret')},{url(5672)}", name="worker")
    async with running(amqp):
        await amqp.wait_connected(timeout=5.0)
        assert amqp.url == url(5672)
    records = broker_lines(caplog)
    assert [r.levelname for r in records] == ["INFO"], [r.getMessage() for r in records]
    assert "127.0.0.1:5672" in records[0].getMessage()
    connection = await connect_any(f"{url(dead)},{url(5672)}")  # a command's connection
    await connection.close()


async def test_a_lost_broker_fails_over_to_the_next_within_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    first, second = TcpProxy("127.0.0.1", 5672), TcpProxy("127.0.0.1", 5672)
    await first.start()
    await second.start()
    amqp = AmqpConnection(f"{url(first.port)},{url(second.port)}", name="server")
    try:
        async with running(amqp):
            await amqp.wait_connected(timeout=5.0)
            assert amqp.url == url(first.port)
            await first.stop()
            lost = time.monotonic()
            await eventually(lambda: asyncio.sleep(0, amqp.connects == 2), timeout=5.0)
            assert time.monotonic() - lost < 1.0
            assert amqp.is_connected
            assert amqp.url == url(second.port)
    finally:
        await first.stop()
        await second.stop()
    summary = [(r.levelname, r.getMessage()) for r in broker_lines(caplog)]
    assert [level for level, _ in summary] == ["INFO", "WARNING", "INFO"], summary
    assert f"lost its RabbitMQ connection to 127.0.0.1:{first.port}" in summary[1][1]
    assert f"connected to 127.0.0.1:{second.port}" in summary[2][1]


async def test_every_broker_down_is_one_warning_naming_them_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    ports = free_port(), free_port()
    amqp = AmqpConnection(",".join(url(port, "s3cret") for port in ports), name="worker")
    async with running(amqp):
        await asyncio.sleep(1.5)
    records = broker_lines(caplog)
    assert [r.levelname for r in records] == ["WARNING"], [r.getMessage() for r in records]
    message = records[0].getMessage()
    assert all(f"127.0.0.1:{port}" in message for port in ports)
    assert "s3cret" not in message


def test_a_broker_closing_connections_as_it_stops_is_not_an_extra_error_line() -> None:
    quiet_connect_failures()
    logger = logging.getLogger("aiormq.connection")

    def passes(code: int) -> bool:
        record = logger.makeRecord(
            logger.name,
            logging.ERROR,
            __file__,
            1,
            'Unexpected connection close from remote "%s", '
            "Connection.Close(reply_code=%r, reply_text=%r)",
            ("amqp://guest:******@127.0.0.1:5672/", code, "reason"),
            None,
        )
        return logger.filter(record)

    assert not passes(320)  # CONNECTION_FORCED: the broker stops, OutageLog says so
    assert passes(530)  # NOT_ALLOWED (a wrong vhost, say) stays an error
