"""The admin dashboard, live: while anyone (on any node) is subscribed to `admin:dashboard`,
every node publishes its overview there every SNAPSHOT_INTERVAL seconds,
`{"kind": "snapshot", "node", "at", "overview"}` (the overview is GET /admin/api/overview's
body as that node sees it). Whether anyone listens is one PUBSUB NUMSUB (SHARDNUMSUB on a
Redis Cluster) per interval: nodes subscribe to a channel's bus only for local subscribers,
so a count of zero means no dashboard is open anywhere and nothing else is done."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from handlers import admin_errors
from handlers.admin_notices import DASHBOARD_CHANNEL
from handlers.admin_overview import gather
from server.hub.hub import hub_key
from server.kernel.errors import DatabaseUnavailable
from storage.redis import is_cluster

SNAPSHOT_INTERVAL = 2.0
STOP_TIMEOUT = 2.0  # seconds a snapshot under way may take to finish at shutdown

log = logging.getLogger(__name__)


async def watched(redis: Redis, bus_channel: str) -> bool:
    """Is any node subscribed to this bus channel (so some client is)?"""
    if is_cluster(redis):
        # Asked of every node and summed: a node answers only for its own subscribers.
        counts: Any = await cast(RedisCluster, redis).execute_command(
            "PUBSUB SHARDNUMSUB", bus_channel, target_nodes=RedisCluster.ALL_NODES
        )
    else:
        counts = await redis.pubsub_numsub(bus_channel)
    return any(int(count) > 0 for _, count in counts)


async def publish_snapshot(app: web.Application) -> None:
    hub = app[hub_key]
    report = await gather(app)
    snapshot = {
        "kind": "snapshot",
        "node": hub.node_id,
        "at": time.time(),
        "overview": report.model_dump(mode="json"),
    }
    await hub.publish(DASHBOARD_CHANNEL, orjson.dumps(snapshot), None)


async def _keep_publishing(app: web.Application, stop: asyncio.Event) -> None:
    hub = app[hub_key]
    bus_channel = hub.publisher.history.bus_channel(DASHBOARD_CHANNEL)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SNAPSHOT_INTERVAL)
        if stop.is_set():
            return
        try:
            if await watched(hub.redis, bus_channel):
                await publish_snapshot(app)
        except (RedisError, OSError, DatabaseUnavailable) as error:
            # The page polls meanwhile, and shows the 503 the outage gives
            log.debug("admin snapshot skipped: %s", error)
        except Exception:  # a bug here must not end the loop, nor go unnoticed
            log.exception("admin snapshot failed")


async def dashboard(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx, after the hub's (and WebRTC's): this node's recent-errors collector
    (handlers/admin_errors.py) and its snapshot loop."""
    collector = admin_errors.attach(app)
    stop = asyncio.Event()
    task = asyncio.create_task(_keep_publishing(app, stop), name="admin-snapshots")
    try:
        yield
    finally:
        # A snapshot under way finishes (cancelled inside a Redis command, the client could
        # leave its connection for the garbage collector); one that hangs is cancelled.
        stop.set()
        with contextlib.suppress(TimeoutError):  # wait_for cancelled it
            await asyncio.wait_for(task, STOP_TIMEOUT)
        admin_errors.detach(collector)
