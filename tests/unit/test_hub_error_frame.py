"""The one `error` frame (server/hub/protocol.py `error_frame`) in the three shapes the
transports send: a WebSocket's (always a `ref`, `details` when some), an event stream's
refusal (the `channel`, no `ref`) and a data channel's (neither)."""

from __future__ import annotations

from server.hub.protocol import error_frame


def test_a_websocket_error_always_carries_its_ref() -> None:
    assert error_frame("unavailable", "try again", ref=None) == (
        b'{"type":"error","code":"unavailable","message":"try again","ref":null}'
    )
    details = [{"loc": ["channel"], "message": "required"}]
    assert error_frame("invalid", "invalid subscribe message", details, ref=3) == (
        b'{"type":"error","code":"invalid","message":"invalid subscribe message","ref":3,'
        b'"details":[{"loc":["channel"],"message":"required"}]}'
    )


def test_an_event_stream_refusal_names_its_channel() -> None:
    assert error_frame("forbidden", "no", channel="user:7") == (
        b'{"type":"error","code":"forbidden","message":"no","channel":"user:7"}'
    )


def test_a_data_channel_error_has_code_and_message_only() -> None:
    assert error_frame("rate_limited", "slow down") == (
        b'{"type":"error","code":"rate_limited","message":"slow down"}'
    )
