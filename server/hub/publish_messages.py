"""The messages that publish: `publish`, `message` (an echo, or a direct message to a user)
and binary messages. The client's publishing (publishing.py) keeps their rate and their
order."""

from __future__ import annotations

import orjson

from server.hub import binary
from server.hub.handler import Session
from server.hub.messages import Publish, Text
from server.hub.protocol import encode, now_ms
from server.kernel.realtime_errors import ProtocolError


async def on_publish(session: Session, message: Publish) -> None:
    ref = message.id if message.id is not None else "publish"
    publishing = session.publishing
    publishing.may_publish(message.channel, ref)
    data = orjson.dumps(message.data)
    if len(data) > session.settings.BINARY_MESSAGE_MAX:
        raise ProtocolError("too_large", "publication data is too large", ref)
    publishing.put(message.channel, data, message)


async def on_text_message(session: Session, message: Text) -> None:
    """The seed's send_text: an echo, or a direct message to user `to`."""
    if message.to is None:
        sender = session.connection.sender
        session.reply(
            {"type": "message", "text": message.text, "from": sender, "ts": now_ms()}, message
        )
        return
    ref = message.id if message.id is not None else "message"
    publishing = session.publishing
    if not publishing.rate.take():
        raise ProtocolError("rate_limited", "sending too fast; slow down", ref)
    data = orjson.dumps({"kind": "direct", "text": message.text})
    publishing.put(f"user:{message.to}", data, message)


async def on_binary_message(session: Session, frame: binary.BinaryMessage) -> None:
    header = frame.header
    ref = header.get("id", "binary")
    limit = session.settings.BINARY_MESSAGE_MAX
    if len(frame.data) > limit:
        raise ProtocolError(
            "too_large", f"binary messages are at most {limit} bytes; upload a file", ref
        )
    connection = session.connection
    out = {
        "channel": header.get("channel"),
        "mime": str(header.get("mime") or "application/octet-stream")[:255],
        "filename": str(header.get("filename") or "")[:255] or None,
        "size": len(frame.data),
        "from": connection.sender,
        "ts": now_ms(),
    }
    if header.get("channel") is None:  # no channel: an echo, like the text message
        connection.deliver_binary(binary.message_frame(out, frame.data))
    else:
        session.publishing.may_publish(header["channel"], ref)
        await session.hub.publish_binary(header["channel"], binary.message_frame(out, frame.data))
    if header.get("id") is not None:
        connection.send(encode({"type": "ack", "id": header["id"]}))
