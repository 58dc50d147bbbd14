"""Session: one client's realtime session, the one object both transports drive.

A session starts (joins the hub, greets its client), subscribes it to channels (replay from
a cursor, recovery, then live delivery), replies, and closes. Over a WebSocket it also reads
the client's frames: `receive_text` / `receive_binary` hand each one to its handler, a
function `async def on_x(session, message)` (channel_messages.py, publish_messages.py,
file_messages.py; WebRTC signaling adds its own), registered by type in `message_types()`.
Every problem with a frame is answered with an `error` frame carrying `ref` and the
connection stays open; only frame floods close it.

What only a WebSocket client needs is made on first use: its frame rate limit, its
publishing (publishing.py) and its file transfers (transfers.py). An event stream sends
nothing: its session builds none of them and, closing, only leaves the hub.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from server.files.uploads import uploads_key
from server.hub import binary, messages
from server.hub.channel_messages import on_ping, on_presence, on_subscribe, on_unsubscribe
from server.hub.connection import SessionConnection
from server.hub.file_messages import on_chunk, on_file_abort, on_file_begin, on_file_end
from server.hub.hub import hub_key
from server.hub.protocol import Close, Message, MessageTypes, encode, error_frame, now_ms, parse
from server.hub.publish_messages import on_binary_message, on_publish, on_text_message
from server.hub.publishing import Publishing
from server.hub.ratelimit import TokenBucket
from server.hub.transfers import Transfers
from server.kernel.errors import DatabaseUnavailable
from server.kernel.realtime_errors import RealtimeError
from server.kernel.settings import settings_key

log = logging.getLogger(__name__)

UNAVAILABLE = (RedisError, OSError, TimeoutError, DatabaseUnavailable)


class Session:
    __slots__ = (
        "_frames",
        "_publishing",
        "_transfers",
        "app",
        "connection",
        "extras",
        "hub",
        "settings",
        "types",
    )

    def __init__(
        self, app: web.Application, connection: SessionConnection, types: MessageTypes | None = None
    ) -> None:
        """`types`: the messages the client may send, for a WebSocket the app's registry
        (message_types_key). An event stream sends none, so no close hooks run for it."""
        self.app = app
        self.settings = app[settings_key]
        self.hub = app[hub_key]
        self.connection = connection
        self.types = types if types is not None else MessageTypes()
        self.extras: dict[str, Any] = {}  # per-connection state of other parts (signaling)
        self._frames: TokenBucket | None = None  # made on first use, as the two below
        self._publishing: Publishing | None = None
        self._transfers: Transfers | None = None

    @property
    def publishing(self) -> Publishing:
        if self._publishing is None:
            self._publishing = Publishing(self.hub, self.connection, self.settings)
        return self._publishing

    @property
    def transfers(self) -> Transfers:
        if self._transfers is None:
            self._transfers = Transfers(self.app[uploads_key])
        return self._transfers

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

    async def subscribe(
        self,
        name: str,
        since: str | None,
        ref: Any = None,
        reply_id: Any = None,
        token: str | None = None,
    ) -> bool:
        """Subscribe, replay what was missed after `since` (the transport frames the replay),
        then go live. False: the transport would not go on (an event stream whose `since`
        is beyond the history ends). Refusals raise ProtocolError."""
        result = await self.hub.subscribe(self.connection, name, since, ref, token)
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
        and tell the other parts (signaling leaves its room)."""
        if self._publishing is not None:
            await self._publishing.finish()
        if self._transfers is not None:
            await self._transfers.pause()
        for hook in self.types.on_close:
            try:
                await hook(self)
            except Exception:
                log.exception("closing hook failed for %s", self.connection.client_id)

    # -- frames from a WebSocket client -------------------------------------------------------

    async def receive_text(self, raw: str) -> None:
        if self._flooding():
            return
        message: Message | None = None
        try:
            message = parse(raw, self.types.models)
            await self.types.handlers[message.type](self, message)  # type: ignore[attr-defined]
        except Exception as error:
            answered = message.id if message is not None else None
            what = f"{getattr(message, 'type', '?')} message"
            self._answer(error, answered, answered, what)

    async def receive_binary(self, raw: bytes) -> None:
        if self._flooding():
            return
        try:
            frame = binary.parse(raw)
            if isinstance(frame, binary.Chunk):
                await on_chunk(self, frame)
            else:
                await on_binary_message(self, frame)
        except Exception as error:
            self._answer(error, None, "binary", "binary frame")

    def _answer(self, error: Exception, answered: Any, ref: Any, what: str) -> None:
        """The error frame for a client frame that failed. `answered` is the frame's id (None:
        it has none); `ref` names the frame when the error does not say which it was."""
        if isinstance(error, RealtimeError):
            frame = error_frame(
                error.code, error.message, error.details, ref=error.ref_for(answered)
            )
        elif isinstance(error, UNAVAILABLE):
            frame = error_frame("unavailable", "try again shortly", ref=ref)
        else:  # a bug of ours: say so, keep the connection
            log.error("handling a %s failed", what, exc_info=error)
            thing = "frame" if what.endswith("frame") else "message"
            frame = error_frame(
                "internal_error", f"the server failed to handle this {thing}", ref=ref
            )
        self.connection.send(frame)

    def _flooding(self) -> bool:
        """More than FRAME_RATE frames a second (bursts of twice that) close the connection."""
        frames = self._frames
        if frames is None:
            frames = self._frames = TokenBucket(
                self.settings.FRAME_RATE, self.settings.FRAME_RATE * 2
            )
        if frames.take():
            return False
        self.connection.close_soon(Close.POLICY, "too many frames")
        return True


def message_types() -> MessageTypes:
    """The hub's own message types (other parts add theirs to the same registry)."""
    types = MessageTypes()
    for model, handler in (
        (messages.Ping, on_ping),
        (messages.Subscribe, on_subscribe),
        (messages.Unsubscribe, on_unsubscribe),
        (messages.Publish, on_publish),
        (messages.Text, on_text_message),
        (messages.Presence, on_presence),
        (messages.FileBegin, on_file_begin),
        (messages.FileEnd, on_file_end),
        (messages.FileAbort, on_file_abort),
    ):
        types.add(model, handler)
    return types
