"""The realtime error tree: what goes wrong with one client frame, answered with an error
frame (`{"type": "error", "code", "message", "ref", "details"?}`) while the connection stays
open. Close codes (server/hub/protocol.py `Close`) are for what ends a connection.

    RealtimeError            (code, message, details?); answered with `ref_for(answered)`
    +-- ProtocolError        a text frame: bad JSON, unknown type, invalid fields, a refusal;
    |                        carries `ref`, the id (or type) of the message it answers
    +-- ChannelError         a channel name or permission (bad_channel, forbidden)
    +-- BinaryError          a binary frame that cannot be decoded (bad_binary); ref "binary"
    +-- UploadError          a file transfer: unknown upload, bad offset, checksum, quota;
                             ref: the id of the file.* message, or "file"

A session (server/hub/session.py) answers every RealtimeError that escapes a frame handler
with an error frame carrying its code, message and ref; any other exception is a bug of ours,
logged and answered `internal_error`. Each `code` is a stable string a client may switch on
(docs/PROTOCOL.md lists them).
"""

from __future__ import annotations

from typing import Any


class RealtimeError(Exception):
    """A problem with one client frame; the connection survives it."""

    default_ref: Any = None  # the error frame's `ref` when the frame answered has no id

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def ref_for(self, answered: Any) -> Any:
        """The `ref` of the error frame answering a frame whose id is `answered` (None: it
        had none)."""
        return answered if answered is not None else self.default_ref


class ProtocolError(RealtimeError):
    """A recoverable problem with one client message: answered with an error frame."""

    def __init__(self, code: str, message: str, ref: Any = None, details: Any = None) -> None:
        super().__init__(code, message, details)
        self.ref = ref

    def ref_for(self, answered: Any) -> Any:
        return self.ref  # the raiser named the message (None: it could not be read)


class ChannelError(RealtimeError):
    """A channel name that is malformed, or a channel the caller may not use."""


class BinaryError(RealtimeError):
    """A binary frame that cannot be decoded."""

    default_ref = "binary"


class UploadError(RealtimeError):
    """A file transfer that cannot go on as asked."""

    default_ref = "file"
