"""The realtime error tree (server/kernel/realtime_errors.py): which frame an error answers."""

from __future__ import annotations

from server.kernel.realtime_errors import (
    BinaryError,
    ChannelError,
    ProtocolError,
    RealtimeError,
    UploadError,
)


def test_every_realtime_error_shares_the_base() -> None:
    for kind in (ProtocolError, ChannelError, BinaryError, UploadError):
        error = kind("code", "message")
        assert isinstance(error, RealtimeError)
        assert (error.code, error.message, error.details) == ("code", "message", None)


def test_a_protocol_error_names_the_message_it_answers_itself() -> None:
    assert ProtocolError("bad_json", "not JSON").ref_for(7) is None
    assert ProtocolError("invalid", "bad", "subscribe").ref_for(7) == "subscribe"


def test_other_errors_answer_the_frame_id_or_their_kind_of_frame() -> None:
    assert UploadError("unknown_upload", "no").ref_for(9) == 9
    assert UploadError("unknown_upload", "no").ref_for(None) == "file"
    assert BinaryError("bad_binary", "no").ref_for(None) == "binary"
    assert ChannelError("forbidden", "no").ref_for(None) is None
