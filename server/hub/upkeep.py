"""The hub's background upkeep: report this node's stats every STATS_INTERVAL seconds and
renew its presence leases every PRESENCE_TTL/3, surviving Redis outages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from server.hub.stats import STATS_INTERVAL

log = logging.getLogger(__name__)


async def keep_up(
    presence_ttl: int,
    renew_presence: Callable[[], Awaitable[None]],
    report_stats: Callable[[], Awaitable[None]],
) -> None:
    """Run until cancelled."""
    renew_every = presence_ttl / 3
    renewed = time.monotonic()
    while True:
        await asyncio.sleep(min(STATS_INTERVAL, renew_every))
        try:
            if time.monotonic() - renewed >= renew_every:
                renewed = time.monotonic()
                await renew_presence()
            await report_stats()
        except (RedisError, OSError) as error:
            log.debug("hub upkeep skipped: %s", error)
