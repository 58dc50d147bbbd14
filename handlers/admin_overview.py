"""GET /admin/api/overview: everything the admin dashboard shows, in one answer. Every node's
latest report (server/hub/stats.py), the answering node's channels, users, uploads and server
peers, the WebRTC rooms, and messaging health (queues, outbox, worker heartbeats: the same
report as GET /messaging/health, handlers/messaging_health.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from handlers import admin_errors, messaging_health
from handlers.admin_models import (
    ChannelOut,
    ConnectedUserOut,
    NodeOut,
    OverviewOut,
    RoomSummary,
    ThisNodeOut,
)
from handlers.http import json_response
from handlers.openapi import endpoint
from server.files.uploads import uploads_key
from server.hub.hub import Hub, hub_key
from server.kernel.errors import ServiceUnavailable
from server.kernel.principal import ADMIN_READ, Principal
from signaling.peers import peers_key
from signaling.rooms import rooms_key
from storage import rooms
from storage.db import db_key, transaction
from workers.messaging.relay import relay_key

LISTED = 50  # channels, users and peers listed for the answering node


def _channels(hub: Hub) -> list[ChannelOut]:
    counts = [(name, len(subs)) for name, subs in hub.fanout.subscribers.items()]
    counts.sort(key=lambda item: (-item[1], item[0]))
    return [ChannelOut(name=name, subscribers=n) for name, n in counts[:LISTED]]


def _users(hub: Hub) -> list[ConnectedUserOut]:
    found = []
    for user_id, connections in hub.registry.by_user.items():
        transports: dict[str, int] = {}
        for connection in connections:
            transports[connection.kind] = transports.get(connection.kind, 0) + 1
        found.append(
            ConnectedUserOut(user_id=user_id, connections=len(connections), transports=transports)
        )
    found.sort(key=lambda user: (-user.connections, user.user_id))
    return found[:LISTED]


async def _rooms(app: web.Application) -> list[RoomSummary]:
    if rooms_key not in app:  # WebRTC is off
        return []
    async with transaction(app[db_key]) as conn:
        rows = await rooms.list_visible(conn, 0, everything=True)
    counts = await asyncio.gather(*(app[rooms_key].count(row["id"]) for row in rows))
    return [
        RoomSummary.model_validate({**row, "participants": count})
        for row, count in zip(rows, counts, strict=True)
    ]


async def _peers(app: web.Application) -> list[dict[str, Any]]:
    if peers_key not in app:
        return []
    return (await app[peers_key].stats())[:LISTED]


async def gather(app: web.Application) -> OverviewOut:
    """What this node sees now (GET /admin/api/overview, and the snapshots of
    handlers/admin_live.py). Redis down: RedisError or OSError."""
    hub = app[hub_key]
    nodes = await hub.cluster_stats()
    room_list, peers, messaging = await asyncio.gather(
        _rooms(app), _peers(app), messaging_health.collect(app)
    )
    this_node = ThisNodeOut(
        node=hub.node_id,
        channels=_channels(hub),
        users=_users(hub),
        uploads_in_progress=len(app[uploads_key].active),
        peers=peers,
        relayed=app[relay_key].relayed if relay_key in app else 0,
        recent_errors=admin_errors.recent(app),
    )
    return OverviewOut(
        nodes=[NodeOut.model_validate(node) for node in nodes],
        this_node=this_node,
        rooms=room_list,
        messaging=messaging,
    )


@endpoint(
    summary="The admin dashboard's overview",
    tags=["admin"],
    auth=ADMIN_READ,
    response=OverviewOut,
    errors=[503],
)
async def overview(request: web.Request, principal: Principal) -> web.Response:
    """Nodes report every 5 s; the node that answers adds its own channels (with subscriber
    counts), connected users, uploads in progress and server peers. A broker or database
    outage shows in `messaging.status`; Redis down is a 503. The same report reaches
    subscribers of `admin:dashboard` from every node every 2 s (handlers/admin_live.py)."""
    try:
        report = await gather(request.app)
    except (RedisError, OSError) as error:
        raise ServiceUnavailable(f"Redis is unavailable: {error}") from None
    return json_response(report)
