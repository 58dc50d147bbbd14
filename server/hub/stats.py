"""Node statistics: this node's counters, reported to Redis every STATS_INTERVAL seconds,
and every live node's latest report for GET /realtime/stats.

    {prefix}:nodes   HASH node id -> its latest stats (JSON); a node silent for three
                     intervals is left out
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from redis.asyncio import Redis

from server.hub import wire
from server.hub.fanout import Fanout
from server.hub.registry import Registry

STATS_INTERVAL = 5.0


class NodeStats:
    def __init__(
        self, redis: Redis, prefix: str, node_id: str, registry: Registry, fanout: Fanout
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.key = f"{prefix}:nodes"
        self.published = 0
        self.started_at = time.time()
        self._registry = registry
        self._fanout = fanout

    def current(self) -> dict[str, Any]:
        connections = self._registry.connections.values()
        queues = [connection.queued for connection in connections]
        kinds: dict[str, int] = {}
        for connection in connections:
            kinds[connection.kind] = kinds.get(connection.kind, 0) + 1
        return {
            "node": self.node_id,
            "at": time.time(),
            "connections": len(queues),
            "by_transport": kinds,
            "users": len(self._registry.by_user),
            "channels": len(self._fanout.subscribers),
            "queued_messages": sum(queues),
            "max_queue": max(queues, default=0),
            "published": self.published,
            "delivered": self._fanout.delivered,
            "uptime_seconds": round(time.time() - self.started_at, 1),
        }

    async def report(self) -> None:
        await self.redis.hset(self.key, self.node_id, orjson.dumps(self.current()))
        await self.redis.expire(self.key, int(STATS_INTERVAL * 6))

    async def withdraw(self) -> None:
        await self.redis.hdel(self.key, self.node_id)

    async def cluster(self) -> list[dict[str, Any]]:
        """Every live node's latest stats (this node's are current)."""
        raw = await self.redis.hgetall(self.key)
        nodes = {wire.text(key): orjson.loads(value) for key, value in raw.items()}
        nodes[self.node_id] = self.current()
        fresh = time.time() - STATS_INTERVAL * 3
        return sorted((n for n in nodes.values() if n["at"] >= fresh), key=lambda n: n["node"])
