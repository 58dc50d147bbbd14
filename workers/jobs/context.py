"""What every job gets (JobContext), the message it runs (JobMessage), and PoisonMessage."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from redis.asyncio import Redis

from server.hub.publisher import ChannelPublisher
from server.kernel.errors import IntegrityViolation, InvalidData
from server.kernel.settings import Settings
from storage.coalescer import Coalescer, Flush
from storage.db import Pool
from workers.broker.topology import Topology

if TYPE_CHECKING:
    from workers.telegram.notifier import TelegramNotifier

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    pool: Pool
    redis: Redis
    topology: Topology
    publisher: ChannelPublisher
    telegram: TelegramNotifier | None = None  # set when the Telegram bots run
    _coalescers: dict[str, Coalescer[Any, Any]] = field(default_factory=dict, repr=False)

    def coalescer(self, name: str, flush: Flush[T, R]) -> Coalescer[T, R]:
        """This worker's one Coalescer called `name`: jobs running at the same time submit
        to it and share one statement (group commit, storage/coalescer.py)."""
        found = self._coalescers.get(name)
        if found is None:
            found = self._coalescers[name] = Coalescer(
                flush, name=name, isolate=(IntegrityViolation, InvalidData)
            )
        return found

    def batch_stats(self) -> dict[str, dict[str, float]]:
        return {name: coalescer.stats() for name, coalescer in self._coalescers.items()}


@dataclass(frozen=True)
class JobMessage:
    concern: str
    type: str
    body: dict[str, Any]
    message_id: uuid.UUID | None
    attempt: int


Job = Callable[[JobContext, JobMessage], Awaitable[None]]


class PoisonMessage(Exception):
    """The message can never succeed (malformed, unknown type): dead-letter it at once."""
