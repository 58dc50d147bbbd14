"""The frames the server writes itself after the hand-over (server/hub/ws_protocol.py)."""

from __future__ import annotations

import struct

from server.hub.ws_protocol import close_frame, close_reason, control_frame


def test_a_control_frame_is_unmasked_and_final() -> None:
    assert control_frame(0xA, b"abc") == b"\x8a\x03abc"
    assert control_frame(0x9) == b"\x89\x00"


def test_a_close_frame_carries_its_code_and_reason() -> None:
    frame = close_frame(4003, "session revoked")
    assert frame[0] == 0x88
    assert frame[1] == len(frame) - 2
    assert struct.unpack("!H", frame[2:4]) == (4003,)
    assert frame[4:] == b"session revoked"


def test_a_long_reason_is_cut_on_a_character_boundary() -> None:
    reason = close_reason("é" * 100)  # 200 bytes of UTF-8
    assert len(reason) <= 120
    assert reason.decode() == "é" * 60  # valid UTF-8: a client would refuse half a character
    assert len(close_frame(1000, "x" * 500)) == 2 + 2 + 120  # fits a control frame
