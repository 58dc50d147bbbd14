"""Worker heartbeats in Redis: each worker process keeps its state (a JSON object with its
`worker_id` and the time `at`) under `{prefix}:workers:<worker_id>`, expiring unless renewed;
GET /messaging/health lists the live ones."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis


def _key(prefix: str, worker_id: str) -> str:
    return f"{prefix}:workers:{worker_id}"


async def announce(redis: Redis, prefix: str, state: dict[str, Any], ttl: int) -> None:
    await redis.set(_key(prefix, state["worker_id"]), orjson.dumps(state), ex=ttl)


async def withdraw(redis: Redis, prefix: str, worker_id: str) -> None:
    await redis.delete(_key(prefix, worker_id))


async def live(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    """The state of every worker whose heartbeat has not expired, by worker id."""
    found = [key async for key in redis.scan_iter(match=_key(prefix, "*"), count=100)]
    values = await redis.mget(found) if found else []
    return sorted((orjson.loads(v) for v in values if v), key=lambda w: str(w["worker_id"]))
