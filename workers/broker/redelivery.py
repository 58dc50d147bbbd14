"""Sending a delivered message on when its job did not succeed: to a delayed retry, or to the
dead-letter queue of its concern. Each copy is persistent, keeps the message's id, and is
published with confirms before the caller acks the original (a crash in between leaves a
duplicate, which the inbox drops).

    retry        -> {p}.retry, headers retry-delay, x-attempt (the next one), x-last-error
    dead letter  -> {p}.dead with routing key {p}.<concern>, headers x-error, x-attempts,
                    x-dead-at

`python -m workers dlq requeue` strips HEADERS again (and RabbitMQ's own x-death).
"""

from __future__ import annotations

import time
from typing import Any

import aiormq

from workers.broker.amqp import persistent_copy
from workers.broker.topology import Topology

HEADERS = ("x-attempt", "x-last-error", "retry-delay", "x-error", "x-attempts", "x-dead-at")
PUBLISH_TIMEOUT = 10.0


def attempt_of(headers: dict[str, Any]) -> int:
    """Which attempt a delivery is (1 for a message never retried)."""
    try:
        return max(1, int(headers.get("x-attempt", 1)))
    except (TypeError, ValueError):
        return 1


def one_line(reason: str, limit: int = 500) -> str:
    """A failure's reason for a log line: PostgreSQL's DETAIL and CONTEXT lines joined,
    bounded (the dead letter's `x-error` keeps it whole)."""
    text = " ".join(reason.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Redelivery:
    """Republishes on its own confirming channel, opened on every (re)connection."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._channel: aiormq.abc.AbstractChannel | None = None

    async def open(self, connection: aiormq.abc.AbstractConnection) -> None:
        self._channel = await connection.channel(publisher_confirms=True)

    def forget(self) -> None:
        self._channel = None

    async def retry(
        self, message: aiormq.abc.DeliveredMessage, concern: str, attempt: int, reason: str
    ) -> int:
        """Publish the retry of failed attempt `attempt`; returns its delay in ms."""
        delay = self.topology.retry_delay(attempt)
        headers = {
            "x-attempt": attempt + 1,
            "x-last-error": reason[:1000],
            "retry-delay": str(delay),
        }
        await self._publish(message, self.topology.retry_exchange, concern, headers)
        return delay

    async def dead_letter(
        self, message: aiormq.abc.DeliveredMessage, concern: str, attempt: int, reason: str
    ) -> None:
        headers = {"x-error": reason[:1000], "x-attempts": attempt, "x-dead-at": int(time.time())}
        queue = self.topology.queue(concern)
        await self._publish(message, self.topology.dead_exchange, queue, headers)

    async def _publish(
        self,
        message: aiormq.abc.DeliveredMessage,
        exchange: str,
        routing_key: str,
        headers: dict[str, Any],
    ) -> None:
        channel = self._channel
        if channel is None or channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("no publishing channel")
        await channel.basic_publish(
            message.body,
            exchange=exchange,
            routing_key=routing_key,
            mandatory=True,
            properties=persistent_copy(
                message, {**(message.header.properties.headers or {}), **headers}
            ),
            timeout=PUBLISH_TIMEOUT,
        )
