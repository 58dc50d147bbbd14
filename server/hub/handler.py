"""What a message handler is: `async def on_x(session, message)`, registered for its message
type in MessageTypes (protocol.py). `Session` below is what a handler may use of the
client's session; server/hub/session.py's class is the one implementation. The hub's
handlers (channel_messages.py, publish_messages.py, file_messages.py) and WebRTC signaling's
(handlers/signaling.py) are written against it, so they need not import the session, which
imports them to register them."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from server.hub.connection import SessionConnection
from server.hub.hub import Hub
from server.hub.protocol import Message
from server.hub.publishing import Publishing
from server.hub.transfers import Transfers
from server.kernel.settings import Settings


class Session(Protocol):
    app: web.Application
    hub: Hub
    settings: Settings
    connection: SessionConnection
    extras: dict[str, Any]  # per-connection state of other parts (signaling's rate limit)

    @property
    def publishing(self) -> Publishing: ...

    @property
    def transfers(self) -> Transfers: ...

    def reply(self, frame: dict[str, Any], message: Message | None = None) -> None: ...

    async def subscribe(
        self,
        name: str,
        since: str | None,
        ref: Any = None,
        reply_id: Any = None,
        token: str | None = None,
    ) -> bool: ...
