"""The frames the server sends on a WebSocket (and as the data of event-stream events), as
models: what docs/PROTOCOL.md's "Server -> client" tables say, in a form the AsyncAPI
document (handlers/asyncapi.py, GET /asyncapi.json) publishes as JSON Schema.

The hub still writes these frames as dicts and bytes (a publication is assembled in Lua by
wire.py, `subscribed` splices the replay in as raw bytes): fan-out encodes once per
publication, and building a model per frame would cost that hot path for nothing. The models
therefore describe, they do not build; tests/integration/test_asyncapi_live.py captures the frames
of live WebSocket and event-stream sessions and validates every one against the schemas of
the served document, so a frame that gains, loses or retypes a field fails there. Every model
forbids unknown fields for that reason. File and event-stream frames: frames_files.py,
frames_sse.py; WebRTC signaling: frames_signaling.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Id = int | str | None
REPLY_ID = Field(None, description="The `id` of the message this answers, when it had one.")


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sender(Frame):
    """Who published: `client_id` is null for REST and server publications."""

    user_id: int | None
    client_id: str | None


class Member(Frame):
    """A connection present in a channel."""

    client_id: str
    user_id: int
    transport: Literal["ws", "sse", "webrtc"]


class Connected(Frame):
    """The first frame of every connection: who the client is on this server."""

    type: Literal["connected"]
    client_id: str = Field(description="This connection's id (its WebRTC peer id, too).")
    user_id: int
    server_time: int = Field(description="Unix time in milliseconds.")
    node: str | None = Field(None, description="The server node (WebSocket only).")


class Pong(Frame):
    type: Literal["pong"]
    data: JsonValue = None
    id: Id = REPLY_ID


class Publication(Frame):
    """Something published on a channel the client subscribed to."""

    type: Literal["publication"]
    channel: str
    offset: int = Field(ge=1, description="Its place in the channel's history.")
    epoch: str = Field(description="The id of this history's lifetime.")
    cursor: str = Field(description='`"<epoch>:<offset>"`: subscribe with `since` = it.')
    from_: Sender | None = Field(alias="from")
    ts: int = Field(description="Unix time in milliseconds.")
    data: JsonValue


class Subscribed(Frame):
    """The reply to `subscribe`: the channel's position, and what was missed after `since`."""

    type: Literal["subscribed"]
    channel: str
    cursor: str = Field(description="The channel's current position.")
    recovered: bool = Field(description="False: the gap is beyond the history; reload.")
    publications: list[Publication] = Field(description="What was missed, oldest first.")
    id: Id = REPLY_ID


class Unsubscribed(Frame):
    """The reply to `unsubscribe`; or, with `code` and `reason` (and no `id`), sent on its
    own when the server ended the subscription: `removed` from a private channel's members
    (or the channel was deleted)."""

    type: Literal["unsubscribed"]
    channel: str
    id: Id = REPLY_ID
    code: Literal["removed"] | None = Field(
        None, description="Why the server ended the subscription (absent in a reply)."
    )
    reason: str | None = Field(None, description="The same, in words.")


class PresenceReply(Frame):
    """The reply to `presence`."""

    type: Literal["presence"]
    channel: str
    members: list[Member]
    id: Id = REPLY_ID


class Ack(Frame):
    """A publish (or a direct `message`) stored in the channel's history; a binary message
    with an `id` is acknowledged with the `id` alone."""

    type: Literal["ack"]
    offset: int | None = Field(None, ge=1)
    cursor: str | None = None
    id: Id = REPLY_ID


class Echo(Frame):
    """A `message` without `to`, sent back to its sender."""

    type: Literal["message"]
    text: str
    from_: Sender = Field(alias="from")
    ts: int
    id: Id = REPLY_ID


class Direct(Frame):
    """`POST /realtime/send` to this connection's `client_id`."""

    type: Literal["message"]
    data: JsonValue
    from_: Sender = Field(alias="from")


class PresenceJoin(Frame):
    """Someone subscribed to a channel whose namespace announces it."""

    type: Literal["join"]
    channel: str
    info: Member


class PresenceLeave(Frame):
    """Someone unsubscribed from (or left) a channel whose namespace announces it."""

    type: Literal["leave"]
    channel: str
    info: Member


class Gap(Frame):
    """The server lost Redis, and publications missed meanwhile are no longer in the
    history: those between the last one received and `cursor` are lost (reload); the ones
    after `cursor` follow."""

    type: Literal["gap"]
    channel: str
    cursor: str


class Error(Frame):
    """A message that could not be handled; the connection stays open."""

    type: Literal["error"]
    code: str = Field(description="See docs/PROTOCOL.md, Errors.")
    message: str
    ref: Id = Field(
        None, description="WebSocket: the `id` (or `type`) of the message this answers."
    )
    channel: str | None = Field(None, description="Event stream: the channel concerned.")
    details: JsonValue = None
