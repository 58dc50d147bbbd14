"""Every client the server holds, opened and closed in cleanup contexts (no globals).

None of them requires its service to be up at start: the pool connects on demand, Redis
connects on first command, RabbitMQ is supervised in the background. So the server starts
while a service is down, says so in the log, answers 503 where it needs it, and recovers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.auth.authenticator import Authenticator
from server.auth.service import AuthService
from server.auth.throttle import LoginThrottle
from server.health import ServiceMonitor
from server.hub.hub import Hub
from server.hub.uploads import Uploads
from storage.db import create_pool
from storage.redis import create_redis
from workers.amqp import AmqpConnection
from workers.messages import Acceptor
from workers.relay import OutboxRelay
from workers.topology import Topology

log = logging.getLogger(__name__)


STOP_TIMEOUT = 5.0
SWEEP_INTERVAL = 600.0


def _awaiting(task: asyncio.Task[None]) -> str:
    """The chain of awaits a stuck task sits in (get_stack() shows only the outer frame)."""
    lines = []
    awaitable: object = task.get_coro()
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return "\n".join(lines)


async def _cancel(*tasks: asyncio.Task[None]) -> None:
    """Cancel background tasks and wait for them, but never let one hang the shutdown."""
    for task in tasks:
        task.cancel()
    done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s ended with %r", task.get_name(), task.exception())
    for task in pending:
        where = _awaiting(task)
        log.error(
            "background task %s did not stop within %.0fs; it waits at:\n%s",
            task.get_name(),
            STOP_TIMEOUT,
            where,
        )


async def database(app: web.Application) -> AsyncIterator[None]:
    async with create_pool(app[keys.settings]) as pool:
        app[keys.db] = pool
        yield


async def redis(app: web.Application) -> AsyncIterator[None]:
    client = create_redis(app[keys.settings])
    app[keys.redis] = client
    yield
    await client.aclose()


async def rabbitmq(app: web.Application) -> AsyncIterator[None]:
    """The message acceptor (group commit into the outbox), the supervised broker
    connection and the outbox relay that publishes through it."""
    settings = app[keys.settings]
    app[keys.acceptor] = Acceptor(app[keys.db], Topology.from_settings(settings))
    amqp = AmqpConnection(settings.RABBITMQ_URL.get_secret_value(), name="server")
    relay = OutboxRelay(settings, app[keys.db], amqp)
    app[keys.amqp] = amqp
    app[keys.relay] = relay
    supervisor = asyncio.create_task(amqp.run(), name="amqp-supervisor")
    publisher = asyncio.create_task(relay.run(), name="outbox-relay")
    yield
    relay.close()
    await amqp.close()
    await _cancel(publisher, supervisor)


async def accounts(app: web.Application) -> AsyncIterator[None]:
    """The account service, the per-request authenticator and the login throttle."""
    settings = app[keys.settings]
    service = AuthService(settings)
    app[keys.auth_service] = service
    app[keys.auth] = Authenticator(settings, app[keys.db], app[keys.redis], service)
    app[keys.login_throttle] = LoginThrottle(settings, app[keys.redis])
    yield


async def realtime(app: web.Application) -> AsyncIterator[None]:
    """The hub (channels, fan-out, presence) and the upload store."""
    settings = app[keys.settings]
    hub = Hub(settings, app[keys.redis])
    app[keys.hub] = hub
    uploads = Uploads(settings, app[keys.db])
    app[keys.uploads] = uploads
    await hub.start()
    sweeper = asyncio.create_task(_sweep_uploads(uploads), name="upload-sweeper")
    yield
    await _cancel(sweeper)
    await hub.stop()
    await uploads.close()


async def _sweep_uploads(uploads: Uploads) -> None:
    while True:
        try:
            await uploads.sweep()
        except Exception as error:  # the database may be down; try again later
            log.debug("upload sweep skipped: %s", error)
        await asyncio.sleep(SWEEP_INTERVAL)


async def close_realtime_connections(app: web.Application) -> None:
    """on_shutdown: live WebSockets and event streams are told to go away (1001) first,
    so that graceful shutdown does not wait on them."""
    await app[keys.hub].close_connections()


async def monitor(app: web.Application) -> AsyncIterator[None]:
    watcher = ServiceMonitor(app[keys.db], app[keys.redis], app[keys.amqp])
    app[keys.monitor] = watcher
    task = asyncio.create_task(watcher.watch(), name="service-monitor")
    yield
    await _cancel(task)


CLEANUP_CONTEXTS = (database, redis, accounts, rabbitmq, realtime, monitor)
