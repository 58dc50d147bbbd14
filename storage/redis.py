"""The Redis client both processes use (lazy: it connects on first command)."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from server.kernel.settings import Settings


def create_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.REDIS_URL.get_secret_value(),
        socket_connect_timeout=3,
        socket_timeout=5,
        health_check_interval=30,
        retry_on_timeout=False,
        client_name=settings.APP_NAME,
    )


redis_key: web.AppKey[Redis] = web.AppKey("redis", Redis)
