"""Delivery: one outgoing message, encoded once, framed at most once per transport, and
shared by every connection it goes to. A publication's delivery carries its place in the
channel (epoch, offset, cursor), handed over by the bus or the history that read it."""

from __future__ import annotations

import base64

import orjson

from server.hub import binary
from server.hub.protocol import ws_frame


class Delivery:
    __slots__ = ("_sse", "_ws", "binary", "cursor", "epoch", "event", "offset", "payload")

    def __init__(
        self,
        payload: bytes,
        *,
        event: str,
        binary: bool = False,
        epoch: str = "",
        offset: int = 0,
        cursor: str | None = None,
    ) -> None:
        self.payload = payload
        self.event = event
        self.binary = binary
        self.epoch = epoch  # a publication's place in its channel ("" and 0 for the rest)
        self.offset = offset
        self.cursor = cursor  # `<epoch>:<offset>`, for publications only
        self._ws: bytes | None = None
        self._sse: bytes | None = None

    @property
    def ws(self) -> bytes:
        if self._ws is None:
            self._ws = ws_frame(self.payload, binary=self.binary)
        return self._ws

    @property
    def sse(self) -> bytes:
        """`event:` and `data:` lines (the `id:` line depends on the connection). SSE is
        text only: a binary message arrives as JSON with its bytes in base64."""
        if self._sse is None:
            payload = self.payload
            if self.binary:
                message = binary.parse(payload)
                assert isinstance(message, binary.BinaryMessage)
                payload = orjson.dumps(
                    {
                        "type": "binary",
                        **message.header,
                        "data_base64": base64.b64encode(message.data).decode(),
                    }
                )
            self._sse = b"event: " + self.event.encode() + b"\ndata: " + payload + b"\n\n"
        return self._sse
