"""What every realtime session is: one client's state over any transport and the steps both
transports share. A session starts (joins the hub, greets its client), subscribes it to
channels (replay from a cursor, recovery, then live delivery), replies, and closes. The
WebSocket's message handlers (channel_messages.py, publish_messages.py, file_messages.py)
extend it; session.py assembles the whole Session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import web

from server.files.upload import Upload
from server.files.uploads import uploads_key
from server.hub.connection import Connection
from server.hub.hub import hub_key
from server.hub.protocol import Message, MessageTypes, encode, message_types_key
from server.hub.ratelimit import TokenBucket
from server.kernel.realtime_errors import ProtocolError
from server.kernel.settings import settings_key

log = logging.getLogger(__name__)


class SessionBase:
    __slots__ = (
        "active_uploads",
        "app",
        "connection",
        "extras",
        "frames",
        "hub",
        "outgoing",
        "publishes",
        "sending",
        "settings",
        "types",
        "uploads",
    )

    def __init__(self, app: web.Application, connection: Connection) -> None:
        settings = app[settings_key]
        self.app = app
        self.settings = settings
        self.hub = app[hub_key]
        self.uploads = app[uploads_key]
        self.connection = connection
        # An event stream sends no messages; with WebSocket disabled there are no types.
        self.types: MessageTypes = app.get(message_types_key) or MessageTypes()
        self.frames = TokenBucket(settings.FRAME_RATE, settings.FRAME_RATE * 2)
        self.publishes = TokenBucket(settings.PUBLISH_RATE, settings.PUBLISH_BURST)
        self.active_uploads: dict[str, Upload] = {}
        self.extras: dict[str, Any] = {}  # per-connection state of other parts (signaling)
        self.outgoing: list[tuple[str, bytes, Message]] = []  # publishes not yet sent
        self.sending: asyncio.Future[None] | None = None

    @property
    def sender(self) -> dict[str, Any]:
        return {"user_id": self.connection.user_id, "client_id": self.connection.client_id}

    def start(self, **extra: Any) -> None:
        """Join the hub and greet the client: who it is on this server (plus `extra`)."""
        connection = self.connection
        self.hub.register(connection)
        hello = {
            "type": "connected",
            "client_id": connection.client_id,
            "user_id": connection.user_id,
            "server_time": now_ms(),
            **extra,
        }
        connection.send(encode(hello), event="connected")

    def reply(self, frame: dict[str, Any], message: Message | None = None) -> None:
        if message is not None and message.id is not None:
            frame["id"] = message.id
        self.connection.send(encode(frame))

    def may_publish(self, name: str, ref: Any) -> None:
        """Refuse unless the channel exists, the client may publish there, and it is not
        publishing too fast."""
        channel = self.hub.parse_channel(name, ref)
        self.hub.check(self.hub.channels.check_publish, self.connection.principal, channel, ref)
        if not self.publishes.take():
            raise ProtocolError("rate_limited", "publishing too fast; slow down", ref)

    async def subscribe(
        self, name: str, since: str | None, ref: Any = None, reply_id: Any = None
    ) -> bool:
        """Subscribe, replay what was missed after `since` (the transport frames the replay),
        then go live. False: the transport would not go on (an event stream whose `since`
        is beyond the history ends). Refusals raise ProtocolError."""
        result = await self.hub.subscribe(self.connection, name, since, ref)
        if not self.connection.replay(result, reply_id):
            return False
        self.hub.activate(self.connection, result.subscription)
        return True

    async def close(self) -> None:
        """Wind down, then leave the hub. The transport's handler may be cancelled (a test
        server cancels it when the client goes): the winding down goes on, shielded, and
        whatever happens to it the hub forgets the connection."""
        try:
            await asyncio.shield(self._wind_down())
        finally:
            await self.hub.unregister(self.connection)

    async def _wind_down(self) -> None:
        """Let queued publishes reach Redis, pause unfinished uploads (they can be resumed)
        and tell the other parts (signaling)."""
        if self.sending is not None and not self.sending.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.sending), 5)
        for upload in self.active_uploads.values():
            await self.uploads.pause(upload)
        self.active_uploads.clear()
        for hook in self.types.on_close:
            try:
                await hook(self)
            except Exception:
                log.exception("closing hook failed for %s", self.connection.client_id)


def now_ms() -> int:
    return int(time.time() * 1000)
