"""The SDK's exceptions.

Every failure the server reports for one request (an `error` frame, or an HTTP error
envelope before a stream starts) is raised as `RealtimeError(code, message, ref)` with the
server's `code` (`forbidden`, `bad_channel`, `rate_limited`, ...), its human `message` and
`ref` (the id of the request it answers). The subclasses say more about a few cases.
"""

from __future__ import annotations

from typing import Any


class RealtimeError(Exception):
    """An error the server reported (or the connection failed while a request waited)."""

    def __init__(self, code: str, message: str, ref: Any = None, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, ref={self.ref!r})"

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> RealtimeError:
        """From an `error` frame: `{"type": "error", "code", "message", "ref", "details"?}`."""
        code, message = str(frame.get("code")), str(frame.get("message"))
        return cls(code, message, frame.get("ref"), frame.get("details"))


class ConnectionClosed(RealtimeError):
    """The connection ended and is not coming back (closed, refused, or reconnect gave up).

    `close_code` is the WebSocket close code (or the HTTP status of a refused handshake)
    when one is known."""

    def __init__(self, message: str, close_code: int | None = None, code: str = "closed") -> None:
        super().__init__(code, message)
        self.close_code = close_code


class ConnectionLost(RealtimeError):
    """The connection dropped while this request waited for its reply; the request may or
    may not have reached the server. The client is reconnecting (if allowed)."""

    def __init__(self, message: str = "the connection dropped before the reply") -> None:
        super().__init__("disconnected", message)


class RecoveryFailed(RealtimeError):
    """The server can no longer replay what was missed on `channel` (its history moved on
    or expired): reload the state from elsewhere, then subscribe again without a cursor."""

    def __init__(self, channel: str | None, cursor: str | None) -> None:
        super().__init__(
            "recovery_failed", f"missed publications on {channel} can no longer be recovered"
        )
        self.channel = channel
        self.cursor = cursor
