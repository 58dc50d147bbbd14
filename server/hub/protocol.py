"""The client protocol on the wire (docs/PROTOCOL.md is the reference for clients).

Text frames are JSON objects with a `type`. Each client message type has a model
(messages.py for the hub's own) registered in MessageTypes; anything else is answered with
an `error` frame (the connection stays open). Close codes are named in `Close`. Outgoing
frames are encoded once and, for WebSocket, framed once (`ws_frame`), so a publication
costs the same bytes object for every subscriber.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.kernel.jsonutil import MAX_JSON_DEPTH, is_depth_error, too_deep
from server.kernel.realtime_errors import ProtocolError


class Close(IntEnum):
    """WebSocket close codes and what they mean here (an event stream's last `close` event
    carries the same codes). Code only ever names them; docs/PROTOCOL.md lists them."""

    NORMAL = 1000  # done; an event stream whose recovery failed ends so, too
    GOING_AWAY = 1001  # the server is shutting down: reconnect to another node
    PROTOCOL_ERROR = 1002  # frames that break RFC 6455 (aiohttp's reader refuses them)
    ABNORMAL = 1006  # no answer to a ping within WS_HEARTBEAT/2: dropped, no close frame
    INVALID_TEXT = 1007  # a text message that is not UTF-8
    POLICY = 1008  # the connection broke a rule (frame flood, unusable frames)
    TOO_BIG = 1009  # a message over WS_MAX_MESSAGE_SIZE (aiohttp's reader refuses it)
    INTERNAL = 1011  # a failure of ours; an event stream whose channel could not be subscribed
    AUTH_FAILED = 4001  # credentials missing or invalid (when detected after the upgrade)
    SESSION_REVOKED = 4003  # the session ended or the user was deactivated or deleted
    SLOW_CONSUMER = 4008  # the client did not read fast enough; its queue overflowed


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=65536)
    id: int | str | None = Field(None, description="Echoed in the reply (ack, error ref).")


class MessageTypes:
    """The message types a WebSocket session understands: the hub's own, plus those other
    parts register at startup (WebRTC signaling). One instance per app, shared by every
    connection."""

    def __init__(self) -> None:
        self.models: dict[str, type[Message]] = {}
        self.handlers: dict[str, Callable[[Any, Any], Awaitable[None]]] = {}
        # Called with the session when its connection ends (e.g. leave the WebRTC room).
        self.on_close: list[Callable[[Any], Awaitable[None]]] = []

    def add(self, model: type[Message], handler: Callable[[Any, Any], Awaitable[None]]) -> None:
        name = model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
        self.models[name] = model
        self.handlers[name] = handler


_TOO_DEEP = f"a message nests arrays and objects at most {MAX_JSON_DEPTH} levels deep"


def parse(raw: str | bytes, models: dict[str, type[Message]]) -> Message:
    """Decode and validate one text frame, or raise ProtocolError saying what is wrong."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if is_depth_error(error):
            raise ProtocolError("too_deep", _TOO_DEEP) from None
        raise ProtocolError("bad_json", f"not valid JSON: {error}") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ProtocolError("bad_message", "a message is a JSON object with a string `type`")
    ref = value.get("id") if isinstance(value.get("id"), (int, str)) else value["type"]
    if too_deep(raw, value):  # before a handler could store or echo it (orjson stops at 254)
        raise ProtocolError("too_deep", _TOO_DEEP, ref)
    model = models.get(value["type"])
    if model is None:
        raise ProtocolError("unknown_type", f"unknown message type {value['type'][:64]!r}", ref)
    try:
        return model.model_validate(value)
    except ValidationError as error:
        details = [
            {"loc": [str(p) for p in e["loc"]], "message": e["msg"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
        raise ProtocolError("invalid", f"invalid {value['type']} message", ref, details) from None


def encode(frame: dict[str, Any]) -> bytes:
    return orjson.dumps(frame)


def error_frame(code: str, message: str, details: Any = None, **about: Any) -> bytes:
    """An `error` frame: its code and message, then what it answers (`about`: `ref=` a
    WebSocket message's id or type, `channel=` an event stream's channel; nothing on a data
    channel), then `details` when there are some."""
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message, **about}
    if details is not None:
        frame["details"] = details
    return encode(frame)


def now_ms() -> int:
    """Unix time in milliseconds, the unit of every timestamp the hub writes (`ts`,
    `server_time`, history entries, presence leases)."""
    return int(time.time() * 1000)


_TEXT, _BINARY = 0x1, 0x2


def ws_frame(payload: bytes, *, binary: bool = False) -> bytes:
    """One unmasked, uncompressed WebSocket frame (RFC 6455 5.2) as the server sends it.
    Several of these are written to the socket in one call, which is what makes fan-out
    cheap: one syscall for many messages instead of one each."""
    first = 0x80 | (_BINARY if binary else _TEXT)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload


message_types_key: web.AppKey[MessageTypes] = web.AppKey("ws_types", MessageTypes)
