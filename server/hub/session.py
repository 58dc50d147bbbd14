"""Session: one client's realtime session, the one object both transports drive.

The WebSocket handler reads frames into `receive_text` / `receive_binary`; the event stream
handler only subscribes. Subscribing (replay from a cursor, recovery, live delivery),
replies and closing are shared (session_base.py); the message handlers come from
channel_messages.py, publish_messages.py and file_messages.py, registered by type in
`message_types()` (other parts, WebRTC signaling, add theirs). Every problem with a frame is
answered with an `error` frame carrying `ref` and the connection stays open; only frame
floods close it.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from server.hub import binary, messages
from server.hub.channel_messages import ChannelMessages
from server.hub.file_messages import FileMessages
from server.hub.protocol import Close, Message, MessageTypes, error_frame, parse
from server.hub.publish_messages import PublishMessages
from server.kernel.errors import DatabaseUnavailable
from server.kernel.realtime_errors import RealtimeError

log = logging.getLogger(__name__)

UNAVAILABLE = (RedisError, OSError, TimeoutError, DatabaseUnavailable)


class Session(ChannelMessages, PublishMessages, FileMessages):
    __slots__ = ()

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
                await self.on_chunk(frame)
            else:
                await self.on_binary_message(frame)
        except Exception as error:
            self._answer(error, None, "binary", "binary frame")

    def _answer(self, error: Exception, answered: Any, ref: Any, what: str) -> None:
        """The error frame for a client frame that failed. `answered` is the frame's id (None:
        it has none); `ref` names the frame when the error does not say which it was."""
        if isinstance(error, RealtimeError):
            frame = error_frame(error.code, error.message, error.ref_for(answered), error.details)
        elif isinstance(error, UNAVAILABLE):
            frame = error_frame("unavailable", "try again shortly", ref)
        else:  # a bug of ours: say so, keep the connection
            log.error("handling a %s failed", what, exc_info=error)
            thing = "frame" if what.endswith("frame") else "message"
            frame = error_frame("internal_error", f"the server failed to handle this {thing}", ref)
        self.connection.send(frame)

    def _flooding(self) -> bool:
        if self.frames.take():
            return False
        self.connection.close_soon(Close.POLICY, "too many frames")
        return True


def message_types() -> MessageTypes:
    """The hub's own message types (other parts add theirs to the same registry)."""
    types = MessageTypes()
    for model, handler in (
        (messages.Ping, Session.on_ping),
        (messages.Subscribe, Session.on_subscribe),
        (messages.Unsubscribe, Session.on_unsubscribe),
        (messages.Publish, Session.on_publish),
        (messages.Text, Session.on_text_message),
        (messages.Presence, Session.on_presence),
        (messages.FileBegin, Session.on_file_begin),
        (messages.FileEnd, Session.on_file_end),
        (messages.FileAbort, Session.on_file_abort),
    ):
        types.add(model, handler)
    return types
