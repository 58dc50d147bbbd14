"""The realtime error tree: what goes wrong with one client frame, answered with an error
frame (`{"type": "error", "code", "message", "ref"?, "details"?}`) while the connection stays
open. Close codes (server/hub/protocol.py `Close`) are for what ends a connection.

    RealtimeError            (code, message, details?)
    +-- ProtocolError        a text frame: bad JSON, unknown type, invalid fields; carries
    |                        `ref`, the id of the frame it answers
    +-- ChannelError         a channel name or permission (bad_channel, forbidden)
    +-- BinaryError          a binary frame that cannot be decoded (bad_binary, ...)
    +-- UploadError          a file transfer: unknown upload, bad offset, checksum, quota

Each `code` is a stable string a client may switch on (docs/PROTOCOL.md lists them).
"""

from __future__ import annotations

from typing import Any


class RealtimeError(Exception):
    """A problem with one client frame; the connection survives it."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class ProtocolError(RealtimeError):
    """A recoverable problem with one client message: answered with an error frame."""

    def __init__(self, code: str, message: str, ref: Any = None, details: Any = None) -> None:
        super().__init__(code, message, details)
        self.ref = ref


class ChannelError(RealtimeError):
    """A channel name that is malformed, or a channel the caller may not use."""


class BinaryError(RealtimeError):
    """A binary frame that cannot be decoded."""


class UploadError(RealtimeError):
    """A file transfer that cannot go on as asked."""
