"""Signaling message handlers, added to every WebSocket session's message types: functions
`async def on_x(session, message)` like the hub's own (server/hub/handler.py says what a
handler may use of its session). Closing, a session leaves its room (`on_close`).
"""

from __future__ import annotations

import uuid
from typing import Any

from server.hub.handler import Session
from server.hub.protocol import Message, MessageTypes
from server.hub.ratelimit import TokenBucket
from server.kernel.realtime_errors import ProtocolError
from signaling.peers import peers_key
from signaling.protocol import SERVER_PEER, Answer, Candidate, Join, Leave, Offer
from signaling.rooms import rooms_key


def _limit(session: Session, ref: Any) -> None:
    """Signaling floods are cut short per connection (SIGNALING_RATE per second)."""
    bucket = session.extras.get("signaling_rate")
    if bucket is None:
        rate = session.settings.SIGNALING_RATE
        bucket = session.extras["signaling_rate"] = TokenBucket(rate, rate * 2)
    if not bucket.take():
        raise ProtocolError("rate_limited", "signaling too fast; slow down", ref)


def _ref(message: Message) -> Any:
    return message.id if message.id is not None else message.type  # type: ignore[attr-defined]


async def on_join(session: Session, message: Join) -> None:
    _limit(session, _ref(message))
    rooms = session.app[rooms_key]
    others = await rooms.join(session.connection, uuid.UUID(message.room), _ref(message))
    session.reply(
        {
            "type": "joined",
            "room": message.room,
            "peer_id": session.connection.client_id,
            "participants": [{"peer_id": o["peer_id"], "user_id": o["user_id"]} for o in others],
        },
        message,
    )


async def on_leave(session: Session, message: Leave) -> None:
    room = await session.app[rooms_key].leave(session.connection)
    await session.app[peers_key].close_connection_peer(session.connection.client_id)
    if room is None:
        raise ProtocolError("not_in_room", "you are in no room", _ref(message))
    session.reply({"type": "left", "room": str(room)}, message)


async def on_offer(session: Session, message: Offer) -> None:
    ref = _ref(message)
    _limit(session, ref)
    rooms = session.app[rooms_key]
    if message.to != SERVER_PEER:
        await rooms.relay(
            session.connection, message.to, {"type": "offer", "sdp": message.sdp}, ref
        )
        return
    membership = rooms.room_of(session.connection)
    if membership is None:
        raise ProtocolError("not_in_room", "join a room before calling the server", ref)
    size = await rooms.count(membership.room_id)
    _, answer_sdp = await session.app[peers_key].offer(
        session.connection.principal,
        message.sdp,
        room=membership.room,
        client_id=session.connection.client_id,
        room_size=size,
        ref=ref,
    )
    session.reply(
        {"type": "answer", "from": SERVER_PEER, "room": str(membership.room_id), "sdp": answer_sdp},
        message,
    )


async def on_answer(session: Session, message: Answer) -> None:
    ref = _ref(message)
    _limit(session, ref)
    if message.to == SERVER_PEER:
        raise ProtocolError("bad_signal", "the server never offers, so it takes no answers", ref)
    await session.app[rooms_key].relay(
        session.connection, message.to, {"type": "answer", "sdp": message.sdp}, ref
    )


async def on_candidate(session: Session, message: Candidate) -> None:
    ref = _ref(message)
    _limit(session, ref)
    if message.to != SERVER_PEER:
        await session.app[rooms_key].relay(
            session.connection,
            message.to,
            {"type": "candidate", "candidate": message.candidate},
            ref,
        )
        return
    peer = session.app[peers_key].of_connection(session.connection.client_id)
    if peer is None:
        raise ProtocolError("no_peer", "send an offer to the server before candidates", ref)
    try:
        await peer.add_candidate(message.candidate)
    except Exception as error:  # aiortc's candidate parser asserts, too
        reason = error or type(error).__name__
        raise ProtocolError("bad_candidate", f"unusable candidate: {reason}"[:200], ref) from None


async def on_close(session: Session) -> None:
    await session.app[rooms_key].leave(session.connection, reason="disconnected")
    await session.app[peers_key].close_connection_peer(session.connection.client_id)


def register(types: MessageTypes) -> None:
    for model, handler in (
        (Join, on_join),
        (Leave, on_leave),
        (Offer, on_offer),
        (Answer, on_answer),
        (Candidate, on_candidate),
    ):
        types.add(model, handler)
    types.on_close.append(on_close)
