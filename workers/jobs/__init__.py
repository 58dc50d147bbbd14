"""Jobs the worker runs, by (concern, type). A job gets the shared JobContext and the decoded
message body; it commits its own effects and returns; the worker acks afterwards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.settings import Settings
from workers.topology import Topology


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    pool: Any  # aiopg.Pool
    redis: Redis
    topology: Topology


Job = Callable[[JobContext, dict[str, Any]], Awaitable[None]]


class PoisonMessage(Exception):
    """The message can never succeed (malformed, unknown type): dead-letter it at once."""


def registry() -> dict[tuple[str, str], Job]:
    from workers.jobs import tasks

    return {("tasks", "example"): tasks.run_example}
