"""Exchanges and queues, declared from code by whoever connects first (server or worker).

    {prefix}.jobs   direct exchange; routing key = concern        -> queue {prefix}.{concern}
    {prefix}.dead   direct exchange (dead letters)                 -> queue {prefix}.{concern}.dead

Every queue is durable and dead-letters into `{prefix}.dead` with its own name as routing key,
so a rejected message lands in the dead-letter queue of its concern.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiormq

CONCERNS = ("tasks",)


@dataclass(frozen=True)
class Topology:
    prefix: str

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.jobs"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dead"

    def queue(self, concern: str) -> str:
        return f"{self.prefix}.{concern}"

    def dead_queue(self, concern: str) -> str:
        return f"{self.prefix}.{concern}.dead"

    async def declare(self, channel: aiormq.abc.AbstractChannel) -> None:
        await channel.exchange_declare(self.exchange, exchange_type="direct", durable=True)
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

    async def delete(self, channel: aiormq.abc.AbstractChannel) -> None:
        """Remove everything declare() made (used by tests with a throwaway prefix)."""
        for concern in CONCERNS:
            await channel.queue_delete(self.queue(concern))
            await channel.queue_delete(self.dead_queue(concern))
        await channel.exchange_delete(self.exchange)
        await channel.exchange_delete(self.dead_exchange)
