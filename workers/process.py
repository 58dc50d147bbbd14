"""The worker process assembled: database pool, Redis, a supervised RabbitMQ connection,
the consumer and its heartbeat, and the Telegram bots when enabled. Tests run it in-process
with `worker_running(settings)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from server.hub.publisher import ChannelPublisher
from server.kernel.settings import Settings
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
        try:
            yield worker
        finally:
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
