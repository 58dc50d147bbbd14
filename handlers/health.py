"""Liveness (the process answers) and readiness (PostgreSQL, Redis and RabbitMQ answer; and
whether a worker consumes, which fails readiness only with READY_REQUIRES_WORKER)."""

from __future__ import annotations

import asyncio
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from handlers.http import json_response
from handlers.openapi import endpoint
from server.kernel.errors import ServiceUnavailable
from server.kernel.settings import settings_key
from server.monitor import monitor_key


class Live(BaseModel):
    status: Literal["ok"]


class ServiceState(BaseModel):
    status: Literal["up", "down", "busy"]
    latency_ms: float | None
    error: str | None = None


class WorkerState(BaseModel):
    status: Literal["consuming", "absent", "unknown"]
    live: int | None  # workers with a heartbeat
    consuming: int | None  # of those, the ones whose consumers are on the queues
    last_heartbeat_age_seconds: float | None
    error: str | None = None


class Ready(BaseModel):
    status: Literal["ready"]
    services: dict[str, ServiceState]
    worker: WorkerState


@endpoint(summary="Liveness", tags=["health"], response=Live)
async def live(request: web.Request) -> web.Response:
    """200 while the process runs its event loop; checks nothing else."""
    return json_response({"status": "ok"})


@endpoint(summary="Readiness", tags=["health"], response=Ready, errors=[503])
async def ready(request: web.Request) -> web.Response:
    """Checks PostgreSQL, Redis and RabbitMQ concurrently (2 s each). 503 names the services
    that are down; `error.details.services` has every service's status and latency. A
    service whose check timed out while this process ran half a second or more behind (a
    connection storm) is `busy`, not `down`: 503 too (the process is overloaded), and the
    message says so (`error.details.busy`).

    `worker.status` says whether a worker consumes the queues (`consuming`), none does
    (`absent`: stopped, killed, or reconnecting to the broker) or Redis cannot tell
    (`unknown`). An absent worker leaves the server ready (it still accepts messages into
    the outbox) unless READY_REQUIRES_WORKER is set; then it is a 503 too."""
    monitor = request.app[monitor_key]
    settings = request.app[settings_key]
    results, presence = await asyncio.gather(
        monitor.check_all(), monitor.check_worker(settings.REDIS_PREFIX)
    )
    services = {status.name: status.as_dict() for status in results}
    worker = presence.as_dict()
    down = [status.name for status in results if status.state == "down"]
    busy = [status.name for status in results if status.state == "busy"]
    problems = [f"{', '.join(down)} {'is' if len(down) == 1 else 'are'} down"] if down else []
    if busy:
        problems.append(f"this process is too busy to check {', '.join(busy)}")
    if settings.READY_REQUIRES_WORKER and presence.status != "consuming":
        problems.append(f"no worker is consuming (worker {presence.status})")
    if problems:
        raise ServiceUnavailable(
            f"not ready: {'; '.join(problems)}",
            code="not_ready",
            details={"down": down, "busy": busy, "services": services, "worker": worker},
        )
    return json_response({"status": "ready", "services": services, "worker": worker})
