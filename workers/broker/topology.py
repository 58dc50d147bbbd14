"""Exchanges and queues, declared from code by whoever connects first (server or worker).

    {p}.jobs    direct    routing key = concern         -> queue {p}.<concern>
    {p}.retry   headers   retry-delay = <ms>            -> queue {p}.retry.<ms>
                          (TTL <ms>, then dead-lettered back to {p}.jobs with the
                          message's own routing key: a delayed retry)
    {p}.dead    direct    routing key = {p}.<concern>   -> queue {p}.<concern>.dead

Every work queue is durable and dead-letters into `{p}.dead`, so a message rejected by the
broker (or one the worker gives up on) lands in the dead-letter queue of its concern. The
concerns come from the kind table (workers/broker/kinds.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import aiormq

from server.kernel.settings import Settings
from workers.broker.kinds import CONCERNS


@dataclass(frozen=True)
class Topology:
    prefix: str
    retry_delays_ms: tuple[int, ...] = (1000, 5000, 30000, 120000)

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
        return cls(settings.AMQP_PREFIX, settings.retry_delays_ms)

    def retry_delay(self, attempt: int) -> int:
        """Milliseconds to wait before retrying after failed attempt number `attempt`."""
        return self.retry_delays_ms[min(attempt, len(self.retry_delays_ms)) - 1]

    def retry_queue(self, delay_ms: int) -> str:
        return f"{self.prefix}.retry.{delay_ms}"

    async def declare(self, channel: aiormq.abc.AbstractChannel) -> None:
        await channel.exchange_declare(self.exchange, exchange_type="direct", durable=True)
        await channel.exchange_declare(self.retry_exchange, exchange_type="headers", durable=True)
        await channel.exchange_declare(self.dead_exchange, exchange_type="direct", durable=True)
        for concern in CONCERNS:
            queue = self.queue(concern)
            await channel.queue_declare(
                queue,
                durable=True,
                arguments={
                    "x-dead-letter-exchange": self.dead_exchange,
                    "x-dead-letter-routing-key": queue,
                },
            )
            await channel.queue_bind(queue, self.exchange, routing_key=concern)
            dead = self.dead_queue(concern)
            await channel.queue_declare(dead, durable=True)
            await channel.queue_bind(dead, self.dead_exchange, routing_key=queue)
        for delay in self.retry_delays_ms:
            retry = self.retry_queue(delay)
            await channel.queue_declare(
                retry,
                durable=True,
                arguments={"x-message-ttl": delay, "x-dead-letter-exchange": self.exchange},
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
