"""The events only an event stream sends, as models (see frames.py for why they describe
rather than build). Every other event's data is the WebSocket frame of the same name."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from server.hub.frames import Frame


class StreamSubscribed(Frame):
    """Once per channel, after its replay: from here on the channel is live."""

    type: Literal["subscribed"]
    channel: str
    cursor: str
    recovered: Literal[True]


class RecoveryFailed(Frame):
    """The position asked for is beyond the history: reload; the stream ends. The event's
    id puts the channel at `cursor`, so reconnecting goes on live."""

    type: Literal["recovery-failed"]
    channel: str
    cursor: str = Field(description="The channel's position now.")


class CloseEvent(Frame):
    """The last event: why the server ends the stream (the WebSocket close codes)."""

    code: int = Field(description="1000, 1001, 1011, 4003 or 4008 (docs/PROTOCOL.md).")
    reason: str
