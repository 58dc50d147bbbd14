"""Binary WebSocket frames. The first byte says what follows (integers are big-endian):

    0x01 file chunk      client -> server: upload_id (16 bytes, UUID) | offset (uint64) | bytes
    0x02 binary message  both ways:        header length (uint16) | header (JSON) | bytes

A binary message's header from the client is `{"channel"?, "mime", "filename"?, "id"?}`;
delivered by the server it also carries `{"from", "size", "ts"}`. Binary messages are small
(the server's BINARY_MESSAGE_MAX, 64 KiB by default): larger data goes through
`WSClient.send_file`.
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

CHUNK = 0x01
MESSAGE = 0x02
MAX_HEADER = 4096
_CHUNK_HEAD = struct.Struct("!B16sQ")
_MESSAGE_HEAD = struct.Struct("!BH")


class BinaryFrameError(ValueError):
    """The bytes are not a binary message frame."""


@dataclass
class BinaryMessage:
    """Bytes with a MIME type, an optional file name and (to publish) a channel.

    Received messages also have `header`: everything the server said about them, e.g.
    `header["from"]` (`{"user_id", "client_id"}`), `header["size"]` and `header["ts"]`."""

    data: bytes
    mime: str = "application/octet-stream"
    filename: str | None = None
    channel: str | None = None
    header: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_bytes(
        cls, data: bytes, mime: str, filename: str | None = None, channel: str | None = None
    ) -> BinaryMessage:
        return cls(bytes(data), mime or "application/octet-stream", filename, channel)

    @property
    def sender(self) -> dict[str, Any] | None:
        """`{"user_id", "client_id"}` of who sent a received message."""
        sender = self.header.get("from")
        return sender if isinstance(sender, dict) else None

    def to_frame(self, request_id: int | str | None = None) -> bytes:
        """The 0x02 frame to send. With `request_id` the server answers with an `ack` (or
        an `error`) carrying that id."""
        header: dict[str, Any] = {"mime": self.mime}
        if self.filename is not None:
            header["filename"] = self.filename
        if self.channel is not None:
            header["channel"] = self.channel
        if request_id is not None:
            header["id"] = request_id
        encoded = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(encoded) > MAX_HEADER:
            raise BinaryFrameError(f"binary message header over {MAX_HEADER} bytes")
        return _MESSAGE_HEAD.pack(MESSAGE, len(encoded)) + encoded + self.data

    @classmethod
    def from_frame(cls, frame: bytes) -> BinaryMessage:
        """Parse a 0x02 frame (as the server delivers it) into header and data."""
        if len(frame) < _MESSAGE_HEAD.size or frame[0] != MESSAGE:
            raise BinaryFrameError("not a binary message frame (0x02)")
        _, length = _MESSAGE_HEAD.unpack_from(frame)
        start = _MESSAGE_HEAD.size
        if length > MAX_HEADER or start + length > len(frame):
            raise BinaryFrameError("binary message header length is wrong")
        try:
            header = json.loads(frame[start : start + length])
        except (UnicodeDecodeError, ValueError):
            raise BinaryFrameError("binary message header is not JSON") from None
        if not isinstance(header, dict):
            raise BinaryFrameError("binary message header is not a JSON object")
        filename = header.get("filename")
        channel = header.get("channel")
        return cls(
            data=bytes(frame[start + length :]),
            mime=str(header.get("mime") or "application/octet-stream"),
            filename=filename if isinstance(filename, str) else None,
            channel=channel if isinstance(channel, str) else None,
            header=header,
        )


def chunk_frame(upload_id: str, offset: int, data: bytes) -> bytes:
    """A 0x01 file chunk frame: `data` belongs at `offset` of upload `upload_id`."""
    return _CHUNK_HEAD.pack(CHUNK, uuid.UUID(upload_id).bytes, offset) + data
