"""Liveness (the process answers) and readiness (PostgreSQL, Redis and RabbitMQ answer)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from handlers.http import json_response
from handlers.openapi import endpoint
from server.kernel.errors import ServiceUnavailable
from server.monitor import monitor_key


class Live(BaseModel):
    status: Literal["ok"]


class ServiceState(BaseModel):
    status: Literal["up", "down"]
    latency_ms: float | None
    error: str | None = None


class Ready(BaseModel):
    status: Literal["ready"]
    services: dict[str, ServiceState]


@endpoint(summary="Liveness", tags=["health"], response=Live)
async def live(request: web.Request) -> web.Response:
    """200 while the process runs its event loop; checks nothing else."""
    return json_response({"status": "ok"})


@endpoint(summary="Readiness", tags=["health"], response=Ready, errors=[503])
async def ready(request: web.Request) -> web.Response:
    """Checks PostgreSQL, Redis and RabbitMQ concurrently (2 s each). 503 names the services
    that are down; `error.details.services` has every service's status and latency."""
    results = await request.app[monitor_key].check_all()
    services = {status.name: status.as_dict() for status in results}
    down = [status.name for status in results if not status.ok]
    if down:
        raise ServiceUnavailable(
            f"not ready: {', '.join(down)} {'is' if len(down) == 1 else 'are'} down",
            code="not_ready",
            details={"down": down, "services": services},
        )
    return json_response({"status": "ready", "services": services})
