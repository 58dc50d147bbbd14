"""The frames of a file upload and of binary messages, as models (see frames.py for why they
describe rather than build): file.ready, file.ack, file.done, file.aborted, and the JSON
header of a binary message (docs/PROTOCOL.md, Binary frames and Files)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from server.hub.frames import REPLY_ID, Frame, Id, Sender

SHA256 = r"^[0-9a-f]{64}$"


class FileReady(Frame):
    """The reply to `file.begin`: send chunks from `offset`, at most `window` bytes unacked."""

    type: Literal["file.ready"]
    upload_id: str
    offset: int = Field(ge=0, description="The next byte the server expects.")
    size: int = Field(ge=0)
    chunk_size: int = Field(ge=1, description="The largest chunk the server takes.")
    window: int = Field(ge=1, description="Bytes that may be sent but not acknowledged.")
    id: Id = REPLY_ID


class FileAck(Frame):
    """A chunk was written to disk."""

    type: Literal["file.ack"]
    upload_id: str
    offset: int = Field(ge=0, description="The next offset expected.")


class FileDone(Frame):
    """The reply to `file.end`: the file is stored (and announced on its channel)."""

    type: Literal["file.done"]
    file_id: str
    name: str
    mime: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256)
    url: str = Field(description="`/realtime/files/{file_id}`")
    id: Id = REPLY_ID


class FileAborted(Frame):
    type: Literal["file.aborted"]
    upload_id: str
    id: Id = REPLY_ID


class BinaryHeader(Frame):
    """The JSON header of a binary message (layout 0x02) the server sends: to a channel's
    subscribers, or back to a sender that named no channel."""

    channel: str | None
    mime: str = Field(max_length=255)
    filename: str | None = Field(max_length=255)
    size: int = Field(ge=0)
    from_: Sender = Field(alias="from")
    ts: int


class BinaryEvent(BinaryHeader):
    """A binary message on an event stream (which carries text only): the header's fields
    and the bytes in base64."""

    type: Literal["binary"]
    data_base64: str
