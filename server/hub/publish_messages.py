"""The WebSocket's messages that publish: `publish`, `message` (an echo, or a direct
message to a user) and binary messages. A connection's publishes go to Redis in bursts, in
order, one round trip per burst, while its reader goes on; acks follow in the same order."""

from __future__ import annotations

import asyncio

import orjson
from redis.exceptions import RedisError

from server.hub import binary
from server.hub.messages import Publish, Text
from server.hub.protocol import Message, encode, error_frame
from server.hub.session_base import SessionBase, now_ms
from server.kernel.realtime_errors import ProtocolError

PUBLISH_BURST = 100  # publishes of one connection sent to Redis in one round trip


class PublishMessages(SessionBase):
    __slots__ = ()

    async def on_publish(self, message: Publish) -> None:
        ref = message.id if message.id is not None else "publish"
        self.may_publish(message.channel, ref)
        data = orjson.dumps(message.data)
        if len(data) > self.settings.BINARY_MESSAGE_MAX:
            raise ProtocolError("too_large", "publication data is too large", ref)
        self._queue_publish(message.channel, data, message)

    async def on_text_message(self, message: Text) -> None:
        """The seed's send_text: an echo, or a direct message to user `to`."""
        if message.to is None:
            echo = {"type": "message", "text": message.text, "from": self.sender, "ts": now_ms()}
            self.reply(echo, message)
            return
        ref = message.id if message.id is not None else "message"
        if not self.publishes.take():
            raise ProtocolError("rate_limited", "sending too fast; slow down", ref)
        data = orjson.dumps({"kind": "direct", "text": message.text})
        self._queue_publish(f"user:{message.to}", data, message)

    async def on_binary_message(self, frame: binary.BinaryMessage) -> None:
        header = frame.header
        ref = header.get("id", "binary")
        if len(frame.data) > self.settings.BINARY_MESSAGE_MAX:
            raise ProtocolError(
                "too_large",
                f"binary messages are at most {self.settings.BINARY_MESSAGE_MAX} bytes; "
                "upload a file",
                ref,
            )
        out = {
            "channel": header.get("channel"),
            "mime": str(header.get("mime") or "application/octet-stream")[:255],
            "filename": str(header.get("filename") or "")[:255] or None,
            "size": len(frame.data),
            "from": self.sender,
            "ts": now_ms(),
        }
        if header.get("channel") is None:  # no channel: an echo, like the text message
            self.connection.deliver_binary(binary.message_frame(out, frame.data))
        else:
            self.may_publish(header["channel"], ref)
            await self.hub.publish_binary(header["channel"], binary.message_frame(out, frame.data))
        if header.get("id") is not None:
            self.connection.send(encode({"type": "ack", "id": header["id"]}))

    def _queue_publish(self, channel: str, data: bytes, message: Message) -> None:
        self.outgoing.append((channel, data, message))
        if self.sending is None or self.sending.done():
            self.sending = asyncio.ensure_future(self._send_publishes())

    async def _send_publishes(self) -> None:
        while self.outgoing:
            burst, self.outgoing = self.outgoing[:PUBLISH_BURST], self.outgoing[PUBLISH_BURST:]
            try:
                results = await self.hub.publish_many([(c, d, self.sender) for c, d, _ in burst])
            except (RedisError, OSError, TimeoutError) as error:
                results = [error] * len(burst)
            for (_, _, message), result in zip(burst, results, strict=True):
                if isinstance(result, BaseException):
                    ref = message.id if message.id is not None else message.type  # type: ignore[attr-defined]
                    self.connection.send(
                        error_frame("unavailable", "could not publish; retry", ref)
                    )
                else:
                    self.reply(
                        {"type": "ack", "offset": result.offset, "cursor": result.cursor}, message
                    )
