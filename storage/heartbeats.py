"""Worker heartbeats in Redis: each worker process keeps its state (a JSON object with its
`worker_id`, the time `at`, and whether it is `consuming`) under
`{prefix}:workers:<worker_id>`, expiring unless renewed, and its id in the sorted set
`{prefix}:workers` (scored by `at`), so that finding the live workers reads only theirs
(GET /messaging/health lists them; GET /health/ready says whether one consumes). The keys
lie in several hash slots on a Redis Cluster: nothing here needs them in one."""

from __future__ import annotations

import time
from typing import Any

import orjson
from redis.asyncio import Redis

from storage.redis import mget


def _key(prefix: str, worker_id: str) -> str:
    return f"{prefix}:workers:{worker_id}"


def _index(prefix: str) -> str:
    return f"{prefix}:workers"


async def announce(redis: Redis, prefix: str, state: dict[str, Any], ttl: int) -> None:
    worker_id = str(state["worker_id"])
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(_key(prefix, worker_id), orjson.dumps(state), ex=ttl)
        pipe.zadd(_index(prefix), {worker_id: float(state["at"])})
        # Entries of workers that vanished without withdrawing (SIGKILL) go after a while.
        pipe.zremrangebyscore(_index(prefix), "-inf", time.time() - 10 * ttl)
        pipe.expire(_index(prefix), 10 * ttl)
        await pipe.execute()


async def withdraw(redis: Redis, prefix: str, worker_id: str) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.delete(_key(prefix, worker_id))
        pipe.zrem(_index(prefix), worker_id)
        await pipe.execute()


async def live(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    """The state of every worker whose heartbeat has not expired, by worker id."""
    ids = [
        worker_id.decode() if isinstance(worker_id, bytes) else str(worker_id)
        for worker_id in await redis.zrange(_index(prefix), 0, -1)
    ]
    values = await mget(redis, [_key(prefix, worker_id) for worker_id in ids]) if ids else []
    return sorted((orjson.loads(v) for v in values if v), key=lambda w: str(w["worker_id"]))
