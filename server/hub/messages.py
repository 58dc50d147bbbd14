"""The hub's own client message types: one model per `type` (docs/PROTOCOL.md, "Client ->
server"). Their handlers are in channel_messages.py, publish_messages.py and file_messages.py
(session.py registers them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue, model_validator

from server.hub.protocol import Message


class Ping(Message):
    type: Literal["ping"]
    data: JsonValue = None


class Subscribe(Message):
    type: Literal["subscribe"]
    channel: str
    since: str | None = Field(None, max_length=64, description="A cursor to recover from.")
    token: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="A subscription token (a JWT for this channel and user), in namespaces "
        "that accept them.",
    )


class Unsubscribe(Message):
    type: Literal["unsubscribe"]
    channel: str


class Publish(Message):
    type: Literal["publish"]
    channel: str
    data: JsonValue


class Text(Message):
    """The seed's send_text: echoed back, or a direct message when `to` names a user."""

    type: Literal["message"]
    text: str = Field(max_length=16384)
    to: int | None = Field(None, ge=1, le=2**63 - 1)


class Presence(Message):
    type: Literal["presence"]
    channel: str


class FileBegin(Message):
    """A new upload (name and size required), or `upload_id` alone to resume one."""

    type: Literal["file.begin"]
    name: str | None = Field(None, min_length=1, max_length=255)
    mime: str = Field("application/octet-stream", max_length=255, pattern=r"^[\w.+-]+/[\w.+-]+$")
    size: int | None = Field(None, ge=0)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    channel: str | None = None
    upload_id: str | None = Field(None, description="Resume this upload.", max_length=64)

    @model_validator(mode="after")
    def _new_or_resumed(self) -> FileBegin:
        if self.upload_id is None and (self.name is None or self.size is None):
            raise ValueError("a new upload needs name and size (or give upload_id to resume)")
        return self


class FileEnd(Message):
    type: Literal["file.end"]
    upload_id: str = Field(max_length=64)


class FileAbort(Message):
    type: Literal["file.abort"]
    upload_id: str = Field(max_length=64)
