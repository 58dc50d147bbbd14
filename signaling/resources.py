"""The WebRTC part of the app: room membership and the server peers, opened after the hub
and closed before it (every peer is closed on shutdown)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from signaling.config import configure_host_addresses
from signaling.peers import PeerManager
from signaling.rooms import RoomService

log = logging.getLogger(__name__)


async def webrtc(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings]
    addresses = configure_host_addresses(settings)
    log.info("WebRTC peers gather ICE candidates on %s", ", ".join(addresses) or "no address")
    rooms = RoomService(settings, app[keys.db], app[keys.redis], app[keys.hub])
    peers = PeerManager(settings, app[keys.hub], app[keys.db])
    app[keys.rooms] = rooms
    app[keys.peers] = peers
    upkeep = asyncio.create_task(rooms.maintain(), name="room-leases")
    yield
    await peers.close_all()
    upkeep.cancel()
    await asyncio.gather(upkeep, return_exceptions=True)
