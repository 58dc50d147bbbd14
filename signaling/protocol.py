"""Signaling messages, accepted on /realtime/ws and /realtime/webrtc/signaling alike.

    join {room}                       -> joined {room, peer_id, participants}; others: peer-joined
    leave                             -> left {room}; others: peer-left (also on disconnect)
    offer {to, sdp}                   -> relayed to `to` as offer {from, sdp}; to "server": answer
    answer {to, sdp}                  -> relayed as answer {from, sdp}
    candidate {to, candidate | null}  -> relayed as candidate {from, candidate}; null = end of
                                         candidates

`to` is a peer id (the connection's client_id) of the same room, or "server".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from server.hub.protocol import Message

SERVER_PEER = "server"
MAX_SDP = 64 * 1024


class Join(Message):
    type: Literal["join"]
    room: str = Field(pattern=r"^[0-9a-f-]{36}$")


class Leave(Message):
    type: Literal["leave"]


class Offer(Message):
    type: Literal["offer"]
    to: str = Field(max_length=64)
    sdp: str = Field(min_length=1, max_length=MAX_SDP)

    @field_validator("sdp")
    @classmethod
    def _looks_like_sdp(cls, value: str) -> str:
        if not value.startswith("v=0"):
            raise ValueError("sdp must be an SDP document starting with v=0")
        return value


class Answer(Offer):
    type: Literal["answer"]  # type: ignore[assignment]


class Candidate(Message):
    type: Literal["candidate"]
    to: str = Field(max_length=64)
    candidate: dict[str, Any] | None = Field(
        description="RTCIceCandidateInit (candidate, sdpMid, sdpMLineIndex); null ends them."
    )

    @field_validator("candidate")
    @classmethod
    def _candidate_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        text = value.get("candidate")
        if not isinstance(text, str) or len(text) > 1024:
            raise ValueError("candidate.candidate must be a string of at most 1024 characters")
        if set(value) - {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"}:
            raise ValueError("unknown fields in candidate")
        return value
