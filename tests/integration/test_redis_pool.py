"""The Redis pool of a process is bounded (REDIS_MAX_CONNECTIONS) and a burst larger than it
waits for a free connection instead of failing: a crowd of clients connecting at once used
to get `unavailable` ("Too many connections", redis-py's default pool) from the c100k bench."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
from pydantic import ValidationError

from storage.redis import create_redis
from tests.conftest import make_settings


async def test_a_burst_beyond_the_pool_waits_for_connections_and_all_succeed() -> None:
    name = f"pool-test-{secrets.token_hex(4)}"
    redis = create_redis(make_settings(REDIS_MAX_CONNECTIONS=4, APP_NAME=name))
    key = f"rt-test:pool:{name}:empty"
    try:
        started = time.monotonic()
        # each BLPOP holds its connection 50 ms: 40 of them on 4 connections take >= 0.5 s
        answers = await asyncio.gather(*(redis.blpop([key], timeout=0.05) for _ in range(40)))
        took = time.monotonic() - started
        clients = await redis.client_list()
    finally:
        await redis.aclose()
    assert answers == [None] * 40
    assert took >= 0.45
    assert 1 <= sum(1 for client in clients if client.get("name") == name) <= 4


async def test_the_pool_size_is_a_setting_with_bounds() -> None:
    assert make_settings().REDIS_MAX_CONNECTIONS == 100
    for wrong in (0, 3, 10_001):
        with pytest.raises(ValidationError, match="REDIS_MAX_CONNECTIONS"):
            make_settings(REDIS_MAX_CONNECTIONS=wrong)
