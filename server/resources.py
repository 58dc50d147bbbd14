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

from server.auth.authenticator import Authenticator, authenticator_key
from server.auth.service import AuthService, auth_service_key
from server.auth.throttle import (
    LoginThrottle,
    RegistrationThrottle,
    login_throttle_key,
    registration_throttle_key,
)
from server.files.uploads import Uploads, uploads_key
from server.hub.hub import Hub, hub_key
from server.hub.metrics import realtime_families
from server.kernel.metrics import metrics_key
from server.kernel.settings import settings_key
from server.monitor import ServiceMonitor, monitor_key
from signaling.config import configure_host_addresses
from signaling.metrics import webrtc_families
from signaling.peers import PeerManager, peers_key
from signaling.rooms import RoomService, rooms_key
from storage.db import create_pool, db_key
from storage.redis import create_redis, redis_key
from workers.broker.amqp import AmqpConnection, amqp_key
from workers.broker.topology import Topology
from workers.messaging.acceptor import Acceptor, acceptor_key
from workers.messaging.metrics import OutboxBacklog, server_families
from workers.messaging.relay import OutboxRelay, relay_key

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
    async with create_pool(app[settings_key]) as pool:
        app[db_key] = pool
        yield


async def redis(app: web.Application) -> AsyncIterator[None]:
    client = create_redis(app[settings_key])
    app[redis_key] = client
    yield
    await client.aclose()


async def rabbitmq(app: web.Application) -> AsyncIterator[None]:
    """The message acceptor (group commit into the outbox), the supervised broker
    connection and the outbox relay that publishes through it."""
    settings = app[settings_key]
    acceptor = app[acceptor_key] = Acceptor(app[db_key], Topology.from_settings(settings))
    amqp = AmqpConnection(settings.RABBITMQ_URL.get_secret_value(), name="server")
    relay = OutboxRelay(settings, app[db_key], amqp)
    backlog = OutboxBacklog(app[db_key])
    app[metrics_key].collect(lambda: server_families(acceptor, relay, backlog), backlog.refresh)
    app[amqp_key] = amqp
    app[relay_key] = relay
    supervisor = asyncio.create_task(amqp.run(), name="amqp-supervisor")
    publisher = asyncio.create_task(relay.run(), name="outbox-relay")
    yield
    relay.close()
    await amqp.close()
    await _cancel(publisher, supervisor)


async def accounts(app: web.Application) -> AsyncIterator[None]:
    """The account service, the per-request authenticator and the auth throttles."""
    settings = app[settings_key]
    service = AuthService(settings)
    app[auth_service_key] = service
    app[authenticator_key] = Authenticator(settings, app[db_key], app[redis_key], service)
    app[login_throttle_key] = LoginThrottle(settings, app[redis_key])
    app[registration_throttle_key] = RegistrationThrottle(settings, app[redis_key])
    yield


async def realtime(app: web.Application) -> AsyncIterator[None]:
    """The hub (channels, fan-out, presence) and the upload store."""
    settings = app[settings_key]
    hub = Hub(settings, app[redis_key], app[db_key])
    app[hub_key] = hub
    uploads = Uploads(settings, app[db_key])
    app[uploads_key] = uploads
    app[metrics_key].collect(lambda: realtime_families(hub, uploads))
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
    """on_shutdown: live WebSockets and event streams are told to go away (Close.GOING_AWAY) first,
    so that graceful shutdown does not wait on them."""
    await app[hub_key].close_connections()


async def monitor(app: web.Application) -> AsyncIterator[None]:
    watcher = ServiceMonitor(app[db_key], app[redis_key], app[amqp_key])
    app[monitor_key] = watcher
    task = asyncio.create_task(watcher.watch(), name="service-monitor")
    yield
    await _cancel(task)
    watcher.lag.stop()


async def webrtc(app: web.Application) -> AsyncIterator[None]:
    """WebRTC: room membership and the server peers, opened after the hub and closed
    before it (every peer is closed on shutdown)."""
    settings = app[settings_key]
    addresses = configure_host_addresses(settings)
    log.info("WebRTC peers gather ICE candidates on %s", ", ".join(addresses) or "no address")
    rooms = RoomService(settings, app[db_key], app[redis_key], app[hub_key])
    peers = PeerManager(settings, app[hub_key], app[db_key])
    app[rooms_key] = rooms
    app[peers_key] = peers
    app[metrics_key].collect(lambda: webrtc_families(peers))
    upkeep = asyncio.create_task(rooms.maintain(), name="room-leases")
    yield
    await peers.close_all()
    upkeep.cancel()
    await asyncio.gather(upkeep, return_exceptions=True)


CLEANUP_CONTEXTS = (database, redis, accounts, rabbitmq, realtime, monitor)
