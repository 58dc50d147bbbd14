"""What GET /messaging/health reports, gathered concurrently from RabbitMQ (passive queue
declarations), PostgreSQL (the outbox) and Redis (worker heartbeats)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import web

from server.kernel.settings import settings_key
from storage import heartbeats, outbox
from storage.db import connect, db_key
from storage.redis import redis_key
from workers.broker.amqp import amqp_key
from workers.broker.kinds import CONCERNS
from workers.broker.topology import Topology

STALE_OUTBOX_SECONDS = 30


async def _queues(app: web.Application, topology: Topology) -> dict[str, Any]:
    connection = await app[amqp_key].wait_connected(2)
    channel = await connection.channel(publisher_confirms=False)
    try:
        report: dict[str, Any] = {}
        for concern in CONCERNS:
            live = await channel.queue_declare(topology.queue(concern), passive=True)
            dead = await channel.queue_declare(topology.dead_queue(concern), passive=True)
            report[concern] = {
                "ready": live.message_count,
                "consumers": live.consumer_count,
                "dead_letters": dead.message_count,
            }
        return report
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


async def _outbox(app: web.Application) -> dict[str, Any]:
    async with connect(app[db_key]) as conn:
        count, age = await outbox.backlog(conn)
    return {"backlog": count, "oldest_age_seconds": None if age is None else round(age, 3)}


async def _workers(app: web.Application) -> list[dict[str, Any]]:
    return await heartbeats.live(app[redis_key], app[settings_key].REDIS_PREFIX)


async def collect(app: web.Application) -> dict[str, Any]:
    topology = Topology.from_settings(app[settings_key])
    amqp = app[amqp_key]
    queues, backlog, workers = await asyncio.gather(
        _queues(app, topology), _outbox(app), _workers(app), return_exceptions=True
    )
    problems = []
    if isinstance(queues, BaseException):
        problems.append(f"broker: {type(queues).__name__}")
        queues = {}
    if isinstance(backlog, BaseException):
        problems.append(f"database: {type(backlog).__name__}")
        backlog = {}
    if isinstance(workers, BaseException):
        problems.append(f"redis: {type(workers).__name__}")
        workers = []
    in_flight = sum(int(w.get("in_flight", 0)) for w in workers)
    idle = [concern for concern, counts in queues.items() if counts["consumers"] == 0]
    if idle:
        problems.append(f"no consumer on {', '.join(idle)}")
    fresh = [w for w in workers if time.time() - w["at"] < 30]
    if not fresh:
        problems.append("no worker heartbeat in the last 30 s")
    oldest = backlog.get("oldest_age_seconds")
    if oldest is not None and oldest > STALE_OUTBOX_SECONDS:
        problems.append(f"outbox has messages waiting for {oldest:.0f} s")
    return {
        "status": "degraded: " + "; ".join(problems) if problems else "ok",
        "broker": {"connected": amqp.is_connected, "last_error": amqp.last_error},
        "queues": {**queues, "in_flight_total": in_flight},
        "outbox": backlog,
        "workers": workers,
    }
