"""What the admin actions tell every open dashboard: an event on the admin-only channel
`admin:dashboard` (server/kernel/namespaces.py: only admins subscribe or publish there), so
each dashboard refreshes at once and shows who did what."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from server.hub.hub import hub_key
from server.kernel.principal import Principal

DASHBOARD_CHANNEL = "admin:dashboard"

log = logging.getLogger(__name__)


async def announce(
    app: web.Application, principal: Principal, action: str, details: dict[str, Any]
) -> None:
    """Publish `{"kind": "admin_action", action, by, at, ...details}`; an outage is logged,
    never raised (the action itself was done)."""
    event = {
        "kind": "admin_action",
        "action": action,
        "by": principal.user_id,
        "at": time.time(),
        **details,
    }
    try:
        await app[hub_key].publish(DASHBOARD_CHANNEL, orjson.dumps(event), None)
    except (RedisError, OSError) as error:
        log.warning("admin action %s not announced: %s", action, error)
