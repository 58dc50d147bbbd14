"""Exchanges and queues, declared from code by whoever connects first (server or worker).

    {p}.jobs    direct    routing key = concern         -> queue {p}.<concern>
    {p}.retry   headers   retry-delay = <ms>            -> queue {p}.retry.<ms>
                          (TTL <ms>, then dead-lettered back to {p}.jobs with the
                          message's own routing key: a delayed retry)
    {p}.dead    direct    routing key = {p}.<concern>   -> queue {p}.<concern>.dead

Every work queue is durable and dead-letters into `{p}.dead`, so a message rejected by the
broker (or one the worker gives up on) lands in the dead-letter queue of its concern. The
concerns come from the kind table (workers/broker/kinds.py).

The queues are classic or quorum (AMQP_QUEUE_TYPE, docs/OPERATIONS.md). Quorum retry queues
dead-letter "at-least-once" (which needs `x-overflow: reject-publish`): a retry moves back to
its work queue only once that queue has it, even while a cluster node is down. No queue sets
`x-delivery-limit`: attempts are counted by the worker in `x-attempt`, with a delay between
them (workers/broker/redelivery.py); the broker's count would also count the requeues made
while PostgreSQL is down, and dead-letter those messages without any delay. One counter.

RabbitMQ cannot change the type (or the arguments) of a queue that exists: declaring it
otherwise fails with PRECONDITION_FAILED, raised here as `QueueArgumentsMismatch`, which
the connection supervisor logs once with what to do (workers/broker/amqp.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiormq

from server.kernel.settings import Settings
from workers.broker.amqp import BrokerMisconfigured
from workers.broker.kinds import CONCERNS

QUEUE_TYPES = ("classic", "quorum")


class QueueArgumentsMismatch(BrokerMisconfigured):
    """A queue exists with another type or other arguments than the ones declared."""

    def __init__(self, topology: Topology, queue: str, reason: str) -> None:
        other = "classic" if topology.queue_type == "quorum" else "quorum"
        super().__init__(
            f"queue {queue!r} exists with another type or arguments than "
            f"AMQP_QUEUE_TYPE={topology.queue_type} declares, and RabbitMQ cannot change an "
            f"existing queue ({reason}). Either keep AMQP_QUEUE_TYPE={other}, or drain the "
            f"queues named {topology.prefix}.* (stop the servers' relays, let the workers "
            f"empty them) and delete them (`rabbitmqctl delete_queue <name>`); the next "
            "connection declares them anew"
        )


@dataclass(frozen=True)
class Topology:
    prefix: str
    retry_delays_ms: tuple[int, ...] = (1000, 5000, 30000, 120000)
    queue_type: str = "classic"

    def __post_init__(self) -> None:
        if self.queue_type not in QUEUE_TYPES:
            raise ValueError(f"queue_type must be one of {QUEUE_TYPES}, not {self.queue_type!r}")

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.jobs"

    @property
    def retry_exchange(self) -> str:
        return f"{self.prefix}.retry"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dead"

    def queue(self, concern: str) -> str:
        return f"{self.prefix}.{concern}"

    def dead_queue(self, concern: str) -> str:
        return f"{self.prefix}.{concern}.dead"

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        return cls(settings.AMQP_PREFIX, settings.retry_delays_ms, settings.AMQP_QUEUE_TYPE)

    def retry_delay(self, attempt: int) -> int:
        """Milliseconds to wait before retrying after failed attempt number `attempt`."""
        return self.retry_delays_ms[min(attempt, len(self.retry_delays_ms)) - 1]

    def retry_queue(self, delay_ms: int) -> str:
        return f"{self.prefix}.retry.{delay_ms}"

    def _arguments(self, dead_letters_to: str | None, **more: Any) -> dict[str, Any]:
        """The queue arguments of this type. A classic queue declared without
        `x-queue-type` (before the setting existed) is equivalent to one declared classic."""
        arguments: dict[str, Any] = {"x-queue-type": self.queue_type, **more}
        if dead_letters_to is not None:
            arguments["x-dead-letter-exchange"] = dead_letters_to
            if self.queue_type == "quorum":
                arguments["x-dead-letter-strategy"] = "at-least-once"
                arguments["x-overflow"] = "reject-publish"
        return arguments

    async def _queue(
        self, channel: aiormq.abc.AbstractChannel, name: str, arguments: dict[str, Any]
    ) -> None:
        try:
            await channel.queue_declare(name, durable=True, arguments=arguments)
        except aiormq.exceptions.ChannelPreconditionFailed as error:
            raise QueueArgumentsMismatch(self, name, str(error).strip()) from None

    async def declare(self, channel: aiormq.abc.AbstractChannel) -> None:
        await channel.exchange_declare(self.exchange, exchange_type="direct", durable=True)
        await channel.exchange_declare(self.retry_exchange, exchange_type="headers", durable=True)
        await channel.exchange_declare(self.dead_exchange, exchange_type="direct", durable=True)
        for concern in CONCERNS:
            queue = self.queue(concern)
            arguments = self._arguments(self.dead_exchange, **{"x-dead-letter-routing-key": queue})
            await self._queue(channel, queue, arguments)
            await channel.queue_bind(queue, self.exchange, routing_key=concern)
            dead = self.dead_queue(concern)
            await self._queue(channel, dead, self._arguments(None))
            await channel.queue_bind(dead, self.dead_exchange, routing_key=queue)
        for delay in self.retry_delays_ms:
            retry = self.retry_queue(delay)
            await self._queue(
                channel, retry, self._arguments(self.exchange, **{"x-message-ttl": delay})
            )
            await channel.queue_bind(
                retry,
                self.retry_exchange,
                arguments={"x-match": "all", "retry-delay": str(delay)},
            )

    async def delete(self, channel: aiormq.abc.AbstractChannel) -> None:
        """Remove everything declare() made (used by tests with a throwaway prefix)."""
        for concern in CONCERNS:
            await channel.queue_delete(self.queue(concern))
            await channel.queue_delete(self.dead_queue(concern))
        for delay in self.retry_delays_ms:
            await channel.queue_delete(self.retry_queue(delay))
        for exchange in (self.exchange, self.retry_exchange, self.dead_exchange):
            await channel.exchange_delete(exchange)
