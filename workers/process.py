"""The worker process assembled: database pool, Redis, a supervised RabbitMQ connection,
the consumer and its heartbeat. Tests run it in-process with `worker_running(settings)`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from server.hub.publisher import ChannelPublisher
from server.settings import Settings
from storage.db import create_pool
from storage.redis import create_redis
from workers.amqp import AmqpConnection
from workers.jobs import JobContext
from workers.topology import Topology
from workers.worker import Worker


@contextlib.asynccontextmanager
async def worker_running(settings: Settings) -> AsyncIterator[Worker]:
    async with create_pool(settings) as pool:
        redis = create_redis(settings)
        amqp = AmqpConnection(settings.RABBITMQ_URL.get_secret_value(), name="worker")
        ctx = JobContext(
            settings,
            pool,
            redis,
            Topology.from_settings(settings),
            ChannelPublisher(settings, redis),
        )
        worker = Worker(ctx, amqp)
        background = [
            asyncio.create_task(amqp.run(), name="worker-amqp"),
            asyncio.create_task(worker.heartbeat(), name="worker-heartbeat"),
        ]
        try:
            yield worker
        finally:
            await worker.stop()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await redis.aclose()
