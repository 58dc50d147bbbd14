"""The worker process assembled: database pool, Redis, a supervised RabbitMQ connection,
the consumer and its heartbeat, the Telegram bots when enabled, and (WORKER_METRICS_PORT)
a small HTTP listener: GET /metrics (behind METRICS_TOKEN, like the server's) and GET
/health (200 `consuming`, else 503). Tests run it in-process with `worker_running(settings)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import Metric
from redis.asyncio import Redis

from server.hub.publisher import ChannelPublisher
from server.kernel.errors import Unauthorized, error_middleware
from server.kernel.metrics import Metrics, bearer_matches, counter, gauge
from server.kernel.settings import Settings
from server.kernel.telemetry import request_id_middleware
from storage.db import Pool, create_pool
from storage.redis import create_redis
from workers.broker.amqp import AmqpConnection
from workers.broker.topology import Topology
from workers.jobs.context import JobContext
from workers.telegram import config as telegram
from workers.worker import Worker

if TYPE_CHECKING:
    from workers.telegram.bots import TelegramBots

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def worker_running(settings: Settings) -> AsyncIterator[Worker]:
    async with create_pool(settings) as pool:
        redis = create_redis(settings)
        amqp = AmqpConnection(settings.RABBITMQ_URL.get_secret_value(), name="worker")
        bots = _telegram_bots(settings, pool, redis)
        ctx = JobContext(
            settings,
            pool,
            redis,
            Topology.from_settings(settings),
            ChannelPublisher(settings, redis),
            telegram=bots.notifier if bots is not None else None,
        )
        worker = Worker(ctx, amqp)
        background = [
            asyncio.create_task(amqp.run(), name="worker-amqp"),
            asyncio.create_task(worker.heartbeat(), name="worker-heartbeat"),
        ]
        if bots is not None and settings.TELEGRAM_POLLING:
            bots.start()
        listener = await _listen(settings, worker)
        try:
            yield worker
        finally:
            if listener is not None:
                await listener.cleanup()
            await worker.stop()
            if bots is not None:  # after the jobs, which may still be sending through it
                await bots.close()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await redis.aclose()


def _telegram_bots(settings: Settings, pool: Pool, redis: Redis) -> TelegramBots | None:
    if not telegram.enabled(settings):
        if settings.TELEGRAM_BOTS_ENABLED:
            log.warning("TELEGRAM_BOTS_ENABLED is set but TELEGRAM_BOT_TOKENS is empty: no bots")
        return None
    from workers.telegram.bots import TelegramBots  # aiogram only where it is used

    return TelegramBots(settings, pool, redis)


def worker_families(worker: Worker) -> Iterator[Metric]:
    yield counter(
        "messaging_processed", "Messages this worker processed and acked.", worker.processed
    )
    yield counter(
        "messaging_retried", "Failed messages this worker scheduled for a retry.", worker.retried
    )
    yield counter(
        "messaging_dead_lettered",
        "Messages this worker sent to a dead-letter queue.",
        worker.dead_lettered,
    )
    yield gauge("messaging_in_flight", "Jobs running in this worker now.", len(worker._inflight))
    yield gauge(
        "messaging_worker_consuming",
        "1 while this worker's consumers are on the queues, else 0.",
        int(worker.consuming),
    )


def metrics_app(settings: Settings, worker: Worker) -> web.Application:
    """GET /metrics and GET /health of one worker."""
    metrics = Metrics(http=False)
    metrics.collect(lambda: worker_families(worker))
    metrics.registry.register(worker.durations.histogram)
    token = settings.METRICS_TOKEN.get_secret_value()

    async def scrape(request: web.Request) -> web.Response:
        if token and not bearer_matches(request.headers.get("Authorization", ""), token):
            raise Unauthorized("a valid metrics token is required")
        response = web.Response(body=await metrics.scrape())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def health(request: web.Request) -> web.Response:
        consuming = worker.consuming
        body = {
            "status": "consuming" if consuming else "not consuming",
            "worker_id": worker.worker_id,
        }
        return web.json_response(body, status=200 if consuming else 503)

    # The server's envelope for errors (401 here, 404 elsewhere), with a request id.
    app = web.Application(middlewares=[request_id_middleware, error_middleware])
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/health", health)
    return app


async def _listen(settings: Settings, worker: Worker) -> web.AppRunner | None:
    """Start the listener when WORKER_METRICS_PORT is set. A port taken is logged, not fatal:
    the worker's job is the queue, not its metrics."""
    if not settings.WORKER_METRICS_PORT:
        return None
    runner = web.AppRunner(metrics_app(settings, worker), access_log=None)
    await runner.setup()
    host, port = settings.WORKER_METRICS_HOST, settings.WORKER_METRICS_PORT
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        log.error("worker metrics listener on %s:%d not started: %s", host, port, error)
        await runner.cleanup()
        return None
    log.info("worker metrics and health on http://%s:%d/", host, port)
    return runner
