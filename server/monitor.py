"""Readiness of the three backing services, checked live for /health/ready and watched in
the background so that an outage (and the recovery) is named in the log once, with the
command that starts the missing service; and whether a worker consumes (its heartbeats).

A check that times out while this process's event loop runs BUSY_LAG or more behind says
nothing about the service (its answer may be waiting behind a connection storm): it is
`busy`, not `down`, and the log says the process is busy instead of sending the operator
to restart a service that is up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from server.kernel.looplag import LoopLag
from storage import heartbeats
from storage.db import Pool, connect
from storage.redis import check_cluster
from workers.broker.amqp import AmqpConnection

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0
WATCH_INTERVAL = 5.0
BUSY_LAG = 0.5  # seconds the event loop may run behind before a timeout is blamed on it

START_HINTS = {
    "postgres": "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) "
    "main start` (or `docker compose up -d postgres`)",
    "redis": "start it with `redis-server --daemonize yes` (or `docker compose up -d redis`)",
    "rabbitmq": "start it with `rabbitmq-server -detached` (or `docker compose up -d rabbitmq`)",
}


@dataclass
class ServiceStatus:
    name: str
    ok: bool
    latency_ms: float | None
    error: str | None = None
    busy: bool = False  # not answered in time while this process was busy: unknown

    @property
    def state(self) -> str:
        return "up" if self.ok else "busy" if self.busy else "down"

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "status": self.state,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
        }
        if self.error:
            result["error"] = self.error
        return result


@dataclass
class WorkerPresence:
    """What the live heartbeats say: `consuming` when at least one worker has its consumers
    on the queues, `absent` when none has (stopped, killed, or reconnecting to the broker),
    `unknown` when Redis could not say."""

    live: int | None
    consuming: int | None
    last_heartbeat_age_seconds: float | None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.consuming is None:
            return "unknown"
        return "consuming" if self.consuming else "absent"

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "status": self.status,
            "live": self.live,
            "consuming": self.consuming,
            "last_heartbeat_age_seconds": self.last_heartbeat_age_seconds,
        }
        if self.error:
            result["error"] = self.error
        return result


def worker_presence(workers: list[dict[str, Any]], now: float) -> WorkerPresence:
    """From the live heartbeats (a worker too old to say `consuming` says `connected`)."""
    consuming = [w for w in workers if w.get("consuming", w.get("connected"))]
    ages = [now - float(w["at"]) for w in workers]
    return WorkerPresence(len(workers), len(consuming), round(min(ages), 3) if ages else None)


class ServiceMonitor:
    def __init__(self, pool: Pool, redis: Redis, amqp: AmqpConnection) -> None:
        self._heartbeats_redis = redis
        self._checks: dict[str, Callable[[], Awaitable[None]]] = {
            "postgres": lambda: self._postgres(pool),
            "redis": lambda: self._redis(redis),
            "rabbitmq": lambda: self._rabbitmq(amqp),
        }
        self.last: dict[str, str] = {}  # each service's last state
        self._down: set[str] = set()  # reported unavailable, not yet available again
        self.lag = LoopLag()

    @staticmethod
    async def _postgres(pool: Pool) -> None:
        async with connect(pool) as conn:
            await conn.fetch_value("SELECT 1")

    @staticmethod
    async def _redis(redis: Redis) -> None:
        await redis.ping()
        await check_cluster(redis)  # a Redis Cluster also says whether every slot is served

    @staticmethod
    async def _rabbitmq(amqp: AmqpConnection) -> None:
        await amqp.ping(CHECK_TIMEOUT)

    async def check(self, name: str) -> ServiceStatus:
        self.lag.start()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self._checks[name]()
        except Exception as error:
            lag = self.lag.recent()
            if isinstance(error, TimeoutError) and lag >= BUSY_LAG:
                return ServiceStatus(
                    name,
                    False,
                    None,
                    f"no answer within {CHECK_TIMEOUT:g} s while this process was busy (its"
                    f" event loop {lag:.1f} s behind)",
                    busy=True,
                )
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            return ServiceStatus(
                name, False, None, f"{type(error).__name__}: {message}".rstrip(": ")
            )
        return ServiceStatus(name, True, (time.perf_counter() - started) * 1000)

    async def check_worker(self, prefix: str) -> WorkerPresence:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                workers = await heartbeats.live(self._heartbeats_redis, prefix)
        except Exception as error:
            return WorkerPresence(
                None, None, None, f"{type(error).__name__}: cannot read heartbeats"
            )
        return worker_presence(workers, time.time())

    async def check_all(self) -> list[ServiceStatus]:
        results = await asyncio.gather(*(self.check(name) for name in self._checks))
        self._note(results)
        return list(results)

    def _note(self, results: list[ServiceStatus]) -> None:
        """Log each change once: an outage, the recovery from it (however many `busy`
        checks came between), and the start of a busy spell."""
        for status in results:
            name, now = status.name, status.state
            if now == "down" and name not in self._down:
                self._down.add(name)
                log.warning("%s is unavailable (%s); %s", name, status.error, START_HINTS[name])
            elif now == "up" and name in self._down:
                self._down.discard(name)
                log.info("%s is available again", name)
            if now == "busy" and self.last.get(name) != "busy":
                log.warning("%s not checked: %s; not an outage", name, status.error)
            self.last[name] = now

    async def watch(self) -> None:
        """Check every few seconds so outages and recoveries reach the log."""
        while True:
            await self.check_all()
            await asyncio.sleep(WATCH_INTERVAL)


monitor_key: web.AppKey[ServiceMonitor] = web.AppKey("monitor", ServiceMonitor)
