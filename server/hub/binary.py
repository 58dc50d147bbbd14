"""Binary frames. The first byte says what follows (all integers big-endian):

    0x01 file chunk      client -> server: upload_id (16 bytes, UUID) | offset (uint64) | bytes
    0x02 binary message  both ways:        header length (uint16) | header (JSON) | bytes

A binary message's header, from the client: {"channel"?, "mime", "filename"?, "id"?}.
Delivered to subscribers, the server's header adds {"from", "size", "ts"}.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from server.kernel.jsonutil import MAX_JSON_DEPTH, is_depth_error, too_deep
from server.kernel.realtime_errors import BinaryError

CHUNK = 0x01
MESSAGE = 0x02
_CHUNK_HEAD = struct.Struct("!B16sQ")
_MESSAGE_HEAD = struct.Struct("!BH")
MAX_HEADER = 4096
TOO_DEEP = f"a binary message header nests at most {MAX_JSON_DEPTH} levels deep"


@dataclass(frozen=True)
class Chunk:
    upload_id: uuid.UUID
    offset: int
    data: memoryview


@dataclass(frozen=True)
class BinaryMessage:
    header: dict[str, Any]
    data: memoryview


def parse(frame: bytes) -> Chunk | BinaryMessage:
    if not frame:
        raise BinaryError("bad_binary", "empty binary frame")
    view = memoryview(frame)
    if frame[0] == CHUNK:
        if len(frame) < _CHUNK_HEAD.size:
            raise BinaryError("bad_binary", "chunk frame shorter than its 25-byte header")
        _, raw_id, offset = _CHUNK_HEAD.unpack_from(frame)
        return Chunk(uuid.UUID(bytes=raw_id), offset, view[_CHUNK_HEAD.size :])
    if frame[0] == MESSAGE:
        if len(frame) < _MESSAGE_HEAD.size:
            raise BinaryError("bad_binary", "binary message shorter than its header")
        _, length = _MESSAGE_HEAD.unpack_from(frame)
        start = _MESSAGE_HEAD.size
        if length > MAX_HEADER or start + length > len(frame):
            raise BinaryError("bad_binary", "binary message header length is wrong")
        raw = bytes(view[start : start + length])
        try:
            header = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            if is_depth_error(error):
                raise BinaryError("too_deep", TOO_DEEP) from None
            raise BinaryError("bad_binary", "binary message header is not JSON") from None
        if too_deep(raw, header):
            raise BinaryError("too_deep", TOO_DEEP)
        if not isinstance(header, dict):
            raise BinaryError("bad_binary", "binary message header must be a JSON object")
        return BinaryMessage(header, view[start + length :])
    raise BinaryError("bad_binary", f"unknown binary frame kind 0x{frame[0]:02x}")


def message_frame(header: dict[str, Any], data: bytes | memoryview) -> bytes:
    encoded = orjson.dumps(header)
    return _MESSAGE_HEAD.pack(MESSAGE, len(encoded)) + encoded + bytes(data)


def chunk_frame(upload_id: uuid.UUID, offset: int, data: bytes) -> bytes:
    return _CHUNK_HEAD.pack(CHUNK, upload_id.bytes, offset) + data
