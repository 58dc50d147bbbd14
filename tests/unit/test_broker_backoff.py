"""The RabbitMQ reconnection schedule and its outage log, without a network: a retry at
least every second, one warning when an outage starts, a summary at most once a minute, one
line when it ends."""

from __future__ import annotations

import itertools
import logging

import pytest

from workers.broker.outages import OutageLog, backoff_delays


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999])
def test_no_wait_between_attempts_exceeds_one_second(draw: float) -> None:
    delays = list(itertools.islice(backoff_delays(rand=lambda: draw), 200))
    assert max(delays) <= 1.0
    assert min(delays) > 0.1  # no busy loop
    assert all(delay >= 0.5 for delay in delays[3:])  # settles near 1 s, not below


def test_the_backoff_is_jittered() -> None:
    assert len(set(itertools.islice(backoff_delays(), 20))) > 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_ten_minute_outage_logs_a_line_a_minute_at_most(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = OutageLog("worker", "amqp://guest:secret@rabbit.example:5673/vh", clock=clock)
    caplog.set_level(logging.DEBUG, logger="workers.broker.amqp")
    for _ in range(600):  # one failed attempt a second for ten minutes
        outage.failed("AMQPConnectionError: [Errno 111] Connect call failed")
        clock.now += 1.0
    outage.recovered()

    records = [r for r in caplog.records if r.name == "workers.broker.amqp"]
    messages = [r.getMessage() for r in records]
    assert all("secret" not in m for m in messages), messages
    first, *summaries, last = records
    assert first.levelno == logging.WARNING
    assert "rabbit.example:5673" in first.getMessage()
    assert "retr" in first.getMessage()
    assert 9 <= len(summaries) <= 10, messages
    assert all(r.levelno == logging.WARNING for r in summaries)
    assert "RabbitMQ still unreachable after 60 s, 61 attempts" in summaries[0].getMessage()
    assert last.levelno == logging.INFO
    assert "RabbitMQ reachable again after 600 s" in last.getMessage()
    assert all(r.exc_info is None for r in records)


def test_a_new_outage_after_recovery_warns_again(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outage = OutageLog("server", "amqp://guest:guest@localhost/", clock=clock)
    caplog.set_level(logging.INFO, logger="workers.broker.amqp")
    outage.lost()
    clock.now += 2.5
    outage.failed("refused")
    outage.recovered()
    outage.failed("refused")
    outage.recovered()
    levels = [r.levelname for r in caplog.records if r.name == "workers.broker.amqp"]
    assert levels == ["WARNING", "INFO", "WARNING", "INFO"]
    assert "localhost:5672" in caplog.records[0].getMessage()
    assert "reachable again after 2 s" in caplog.records[1].getMessage()
