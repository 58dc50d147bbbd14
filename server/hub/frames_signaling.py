"""The WebRTC signaling frames the server sends, as models (see frames.py for why they
describe rather than build): replies built in handlers/signaling.py, relays and room events
in signaling/rooms.py (docs/PROTOCOL.md, WebRTC)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from server.hub.frames import REPLY_ID, Frame, Id

ROOM = Field(description="The room's id (a UUID).")


class Participant(Frame):
    peer_id: str
    user_id: int


class Joined(Frame):
    """The reply to `join`: the other members present."""

    type: Literal["joined"]
    room: str = ROOM
    peer_id: str = Field(description="This connection's peer id (its client_id).")
    participants: list[Participant]
    id: Id = REPLY_ID


class Left(Frame):
    type: Literal["left"]
    room: str = ROOM
    id: Id = REPLY_ID


class PeerJoined(Frame):
    type: Literal["peer-joined"]
    room: str = ROOM
    peer_id: str
    user_id: int


class PeerLeft(Frame):
    type: Literal["peer-left"]
    room: str = ROOM
    peer_id: str
    user_id: int
    reason: Literal["left", "disconnected"]


class Relayed(Frame):
    """What every relayed signal carries: who sent it, in which room."""

    from_: str = Field(alias="from", description="The sender's peer id.")
    from_user: int
    room: str = ROOM


class RelayedOffer(Relayed):
    type: Literal["offer"]
    sdp: str


class RelayedAnswer(Relayed):
    type: Literal["answer"]
    sdp: str


class RelayedCandidate(Relayed):
    type: Literal["candidate"]
    candidate: dict[str, Any] | None = Field(
        description="RTCIceCandidateInit; null: the sender's candidates are complete."
    )


class ServerAnswer(Frame):
    """The server peer's answer to an `offer` sent `to: "server"` (all its candidates in)."""

    type: Literal["answer"]
    from_: Literal["server"] = Field(alias="from")
    room: str = ROOM
    sdp: str
    id: Id = REPLY_ID
