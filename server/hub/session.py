"""What one WebSocket client may say, and the answers: one method per message type.

Every problem with a message is answered with an `error` frame carrying `ref` (the
message's id, or its type) and the connection stays open; only frame floods close it.
docs/PROTOCOL.md describes every type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from server.files.uploads import Upload, uploads_key
from server.hub import binary
from server.hub.connection import Connection
from server.hub.hub import hub_key
from server.hub.protocol import (
    Close,
    FileAbort,
    FileBegin,
    FileEnd,
    Message,
    MessageTypes,
    Ping,
    Presence,
    Publish,
    Subscribe,
    Text,
    Unsubscribe,
    encode,
    error_frame,
    message_types_key,
    parse,
)
from server.hub.ratelimit import TokenBucket
from server.kernel.errors import DatabaseUnavailable
from server.kernel.realtime_errors import BinaryError, ProtocolError, UploadError
from server.kernel.settings import settings_key

log = logging.getLogger(__name__)

PUBLISH_BURST = 100  # publishes of one connection sent to Redis in one round trip

Handler = Callable[["RealtimeSession", Any], Awaitable[None]]


class RealtimeSession:
    """The protocol state of one connection: its rate limits and its uploads."""

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
        self.frames = TokenBucket(settings.FRAME_RATE, settings.FRAME_RATE * 2)
        self.publishes = TokenBucket(settings.PUBLISH_RATE, settings.PUBLISH_BURST)
        self.active_uploads: dict[str, Upload] = {}
        self.types: MessageTypes = app[message_types_key]
        self.extras: dict[str, Any] = {}  # per-connection state of other parts (signaling)
        self.outgoing: list[tuple[str, bytes, Message]] = []  # publishes not yet sent
        self.sending: asyncio.Future[None] | None = None

    @property
    def sender(self) -> dict[str, Any]:
        return {"user_id": self.connection.user_id, "client_id": self.connection.client_id}

    def reply(self, frame: dict[str, Any], message: Message | None = None) -> None:
        if message is not None and message.id is not None:
            frame["id"] = message.id
        self.connection.send(encode(frame))

    def flooding(self) -> bool:
        if self.frames.take():
            return False
        self.connection.close_soon(Close.POLICY, "too many frames")
        return True

    # -- frames ------------------------------------------------------------------------------

    async def on_text(self, raw: str) -> None:
        if self.flooding():
            return
        message: Message | None = None
        try:
            message = parse(raw, self.types.models)
            await self.types.handlers[message.type](self, message)  # type: ignore[attr-defined]
        except ProtocolError as error:
            self.connection.send(error_frame(error.code, error.message, error.ref, error.details))
        except UploadError as error:
            ref = message.id if message is not None and message.id is not None else "file"
            self.connection.send(error_frame(error.code, error.message, ref, error.details))
        except (RedisError, OSError, TimeoutError, DatabaseUnavailable):
            self.connection.send(
                error_frame("unavailable", "try again shortly", message.id if message else None)
            )
        except Exception:  # a bug of ours: say so, keep the connection
            log.exception("handling a %s message failed", getattr(message, "type", "?"))
            self.connection.send(
                error_frame(
                    "internal_error",
                    "the server failed to handle this message",
                    message.id if message else None,
                )
            )

    async def on_binary(self, raw: bytes) -> None:
        if self.flooding():
            return
        try:
            frame = binary.parse(raw)
            if isinstance(frame, binary.Chunk):
                await self.chunk(frame)
            else:
                await self.binary_message(frame)
        except BinaryError as error:
            self.connection.send(error_frame(error.code, error.message, "binary"))
        except ProtocolError as error:
            self.connection.send(error_frame(error.code, error.message, error.ref, error.details))
        except UploadError as error:
            self.connection.send(error_frame(error.code, error.message, "file", error.details))
        except (RedisError, OSError, TimeoutError, DatabaseUnavailable):
            self.connection.send(error_frame("unavailable", "try again shortly", "binary"))
        except Exception:  # a bug of ours: say so, keep the connection
            log.exception("handling a binary frame failed")
            self.connection.send(
                error_frame("internal_error", "the server failed to handle this frame", "binary")
            )

    # -- channels ----------------------------------------------------------------------------

    async def ping(self, message: Ping) -> None:
        self.reply({"type": "pong", "data": message.data}, message)

    async def subscribe(self, message: Subscribe) -> None:
        ref = message.id if message.id is not None else "subscribe"
        result = await self.hub.subscribe(self.connection, message.channel, message.since, ref)
        head = {
            "type": "subscribed",
            "channel": message.channel,
            "cursor": result.position.cursor,
            "recovered": result.recovered,
            "id": message.id,
        }
        self.connection.send(
            encode(head)[:-1] + b',"publications":[' + b",".join(result.frames) + b"]}"
        )
        self.hub.activate(self.connection, result.subscription)

    async def unsubscribe(self, message: Unsubscribe) -> None:
        ref = message.id if message.id is not None else "unsubscribe"
        await self.hub.unsubscribe(self.connection, message.channel, ref)
        self.reply({"type": "unsubscribed", "channel": message.channel}, message)

    def _may_publish(self, name: str, ref: Any) -> None:
        channel = self.hub.parse_channel(name, ref)
        self.hub.check(self.hub.channels.check_publish, self.connection.principal, channel, ref)
        if not self.publishes.take():
            raise ProtocolError("rate_limited", "publishing too fast; slow down", ref)

    async def publish(self, message: Publish) -> None:
        ref = message.id if message.id is not None else "publish"
        self._may_publish(message.channel, ref)
        data = orjson.dumps(message.data)
        if len(data) > self.settings.BINARY_MESSAGE_MAX:
            raise ProtocolError("too_large", "publication data is too large", ref)
        self._queue_publish(message.channel, data, message)

    def _queue_publish(self, channel: str, data: bytes, message: Message) -> None:
        """Publishes of one connection are sent to Redis in bursts, in order, one round trip
        per burst; the reader goes on meanwhile. Acks follow in the same order."""
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

    async def text(self, message: Text) -> None:
        """The seed's send_text: an echo, or a direct message to user `to`."""
        if message.to is None:
            self.reply(
                {"type": "message", "text": message.text, "from": self.sender, "ts": _now_ms()},
                message,
            )
            return
        ref = message.id if message.id is not None else "message"
        if not self.publishes.take():
            raise ProtocolError("rate_limited", "sending too fast; slow down", ref)
        data = orjson.dumps({"kind": "direct", "text": message.text})
        self._queue_publish(f"user:{message.to}", data, message)

    async def presence(self, message: Presence) -> None:
        ref = message.id if message.id is not None else "presence"
        channel = self.hub.parse_channel(message.channel, ref)
        self.hub.check(self.hub.channels.check_subscribe, self.connection.principal, channel, ref)
        if not channel.namespace.presence:
            raise ProtocolError(
                "presence_disabled", f"{channel.namespace.name} channels have no presence", ref
            )
        members = await self.hub.presence.members(message.channel)
        self.reply({"type": "presence", "channel": message.channel, "members": members}, message)

    async def binary_message(self, frame: binary.BinaryMessage) -> None:
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
            "ts": _now_ms(),
        }
        if header.get("channel") is None:  # no channel: an echo, like the text message
            self.connection.deliver_binary(binary.message_frame(out, frame.data))
        else:
            self._may_publish(header["channel"], ref)
            await self.hub.publish_binary(
                header["channel"], binary.message_frame(out, frame.data), out
            )
        if header.get("id") is not None:
            self.connection.send(encode({"type": "ack", "id": header["id"]}))

    # -- files -------------------------------------------------------------------------------

    async def file_begin(self, message: FileBegin) -> None:
        ref = message.id if message.id is not None else "file.begin"
        principal = self.connection.principal
        if message.upload_id is not None:
            upload = await self.uploads.resume(principal, message.upload_id)
        else:
            if message.channel is not None:
                self._may_publish(message.channel, ref)
            assert message.name is not None  # the model requires both for a new upload
            assert message.size is not None
            upload = await self.uploads.begin(
                principal,
                name=message.name,
                mime=message.mime,
                size=message.size,
                sha256=message.sha256,
                channel=message.channel,
            )
        self.active_uploads[str(upload.file_id)] = upload
        self.reply(
            {
                "type": "file.ready",
                "upload_id": str(upload.file_id),
                "offset": upload.received,
                "size": upload.size,
                "chunk_size": self.settings.UPLOAD_CHUNK_SIZE,
                "window": self.settings.UPLOAD_WINDOW,
            },
            message,
        )

    def _upload(self, upload_id: str) -> Upload:
        """This connection's upload with this id (any spelling of the UUID)."""
        key = self.uploads.key(upload_id)
        upload = self.active_uploads.get(key)
        if upload is None or upload.closed:
            self.active_uploads.pop(key, None)
            raise UploadError(
                "unknown_upload", "no upload with this id on this connection; send file.begin"
            )
        return upload

    async def chunk(self, frame: binary.Chunk) -> None:
        upload = self._upload(str(frame.upload_id))
        if len(frame.data) > self.settings.UPLOAD_CHUNK_SIZE:
            raise UploadError(
                "chunk_too_large", f"chunks are at most {self.settings.UPLOAD_CHUNK_SIZE} bytes"
            )
        offset = await self.uploads.write(upload, frame.offset, frame.data)
        self.connection.send(
            encode({"type": "file.ack", "upload_id": str(upload.file_id), "offset": offset})
        )

    async def file_end(self, message: FileEnd) -> None:
        upload = self._upload(message.upload_id)
        try:
            row = await self.uploads.finish(upload)
        finally:
            if upload.closed:  # done, discarded (sha256_mismatch) or taken over
                self.active_uploads.pop(str(upload.file_id), None)
        url = f"/realtime/files/{row['id']}"
        done = {
            "file_id": str(row["id"]),
            "name": row["name"],
            "mime": row["mime"],
            "size": row["size"],
            "sha256": row["sha256"],
            "url": url,
        }
        announced = True
        if row["channel"]:
            try:
                await self.hub.publish(
                    row["channel"], orjson.dumps({"kind": "file", **done}), self.sender
                )
            except (RedisError, OSError, TimeoutError):
                announced = False
        self.reply({"type": "file.done", **done}, message)
        if not announced:  # the file is stored all the same: say so after file.done
            self.connection.send(
                error_frame(
                    "unavailable",
                    f"the file is stored but could not be announced on {row['channel']}",
                    message.id if message.id is not None else "file.end",
                )
            )

    async def file_abort(self, message: FileAbort) -> None:
        upload = self._upload(message.upload_id)
        await self.uploads.abort(upload)
        self.active_uploads.pop(str(upload.file_id), None)
        self.reply({"type": "file.aborted", "upload_id": str(upload.file_id)}, message)

    async def close(self) -> None:
        if self.sending is not None and not self.sending.done():
            with contextlib.suppress(Exception):  # let queued publishes reach Redis
                await asyncio.wait_for(asyncio.shield(self.sending), 5)
        for upload in self.active_uploads.values():
            await self.uploads.pause(upload)
        self.active_uploads.clear()
        for hook in self.types.on_close:
            try:
                await hook(self)
            except Exception:
                log.exception("closing hook failed for %s", self.connection.client_id)


def message_types() -> MessageTypes:
    """The hub's own message types (other parts add theirs to the same registry)."""
    types = MessageTypes()
    for model, handler in (
        (Ping, RealtimeSession.ping),
        (Subscribe, RealtimeSession.subscribe),
        (Unsubscribe, RealtimeSession.unsubscribe),
        (Publish, RealtimeSession.publish),
        (Text, RealtimeSession.text),
        (Presence, RealtimeSession.presence),
        (FileBegin, RealtimeSession.file_begin),
        (FileEnd, RealtimeSession.file_end),
        (FileAbort, RealtimeSession.file_abort),
    ):
        types.add(model, handler)
    return types


def _now_ms() -> int:
    return int(time.time() * 1000)
