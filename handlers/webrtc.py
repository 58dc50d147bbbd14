"""/realtime/webrtc: rooms (definitions in PostgreSQL, membership in Redis), the WHIP-style
offer to the server peer, the STUN/TURN servers to use (with short-lived TURN credentials),
and the list of server peers for admins. Signaling itself is on
the WebSocket (handlers/signaling.py)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from handlers.http import json_response
from handlers.openapi import endpoint
from server.kernel.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from server.kernel.principal import Access, Principal, Role
from server.kernel.realtime_errors import ProtocolError
from server.kernel.settings import settings_key
from signaling.config import ice_server_list
from signaling.peers import peers_key
from signaling.protocol import MAX_SDP
from signaling.rooms import may_enter, rooms_key
from storage import rooms
from storage.db import Row, db_key, transaction

REALTIME = Access(scope="realtime")


class RoomIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    max_participants: int = Field(8, ge=1, le=1000)
    media: bool = Field(True, description="Audio/video with the server peer; false: data only.")
    record: bool = Field(False, description="Record members' media sent to the server peer.")
    allowed_user_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        None, max_length=1000, description="Who may join besides the owner; null: everyone."
    )


class RoomOut(BaseModel):
    id: uuid.UUID
    name: str
    owner_id: int
    max_participants: int
    media: bool
    record: bool
    allowed_user_ids: list[int] | None
    created_at: datetime
    participants: int


class RoomPath(BaseModel):
    room_id: uuid.UUID


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sdp: str = Field(
        min_length=3,
        max_length=MAX_SDP,
        pattern=r"^v=0",
        description="An SDP offer (RFC 8866) with at least one media section or data "
        "channel; one that cannot be used is refused with 400 `bad_sdp`.",
    )
    type: Literal["offer"]
    room: uuid.UUID | None = None


class AnswerOut(BaseModel):
    sdp: str
    type: Literal["answer"] = "answer"
    peer_id: str


class IceServerOut(BaseModel):
    urls: str | list[str]
    username: str | None = Field(None, description="Absent for STUN.")
    credential: str | None = Field(None, description="Absent for STUN.")


class IceServersOut(BaseModel):
    ice_servers: list[IceServerOut] = Field(
        description="For `new RTCPeerConnection({iceServers})`; empty when none is configured."
    )
    expires_at: int | None = Field(
        description="Unix time after which the TURN credential is refused; null: no TURN."
    )


class PeersOut(BaseModel):
    peers: list[dict[str, Any]]


async def _room_out(request: web.Request, row: Row) -> RoomOut:
    count = await request.app[rooms_key].count(row["id"])
    return RoomOut.model_validate({**row, "participants": count})


async def _visible_room(request: web.Request, room_id: uuid.UUID, principal: Principal) -> Row:
    async with transaction(request.app[db_key]) as conn:
        row = await rooms.get(conn, room_id)
    if row is None or not may_enter(principal, row):
        raise NotFound("no such room")
    return row


@endpoint(
    summary="Create a room",
    tags=["webrtc"],
    body=RoomIn,
    auth=REALTIME,
    response=RoomOut,
    status=201,
)
async def create_room(request: web.Request, body: RoomIn, principal: Principal) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        row = await rooms.create(conn, owner_id=principal.user_id, **body.model_dump())
    return json_response(await _room_out(request, row), status=201)


@endpoint(
    summary="Rooms you may enter, with participant counts",
    tags=["webrtc"],
    auth=REALTIME,
    response=list[RoomOut],
)
async def list_rooms(request: web.Request, principal: Principal) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        rows = await rooms.list_visible(
            conn, principal.user_id, everything=principal.is_at_least(Role.admin)
        )
    return json_response([await _room_out(request, row) for row in rows])


@endpoint(
    summary="A room", tags=["webrtc"], path=RoomPath, auth=REALTIME, response=RoomOut, errors=[404]
)
async def get_room(request: web.Request, path: RoomPath, principal: Principal) -> web.Response:
    return json_response(
        await _room_out(request, await _visible_room(request, path.room_id, principal))
    )


@endpoint(
    summary="Delete a room",
    tags=["webrtc"],
    path=RoomPath,
    auth=REALTIME,
    status=204,
    errors=[403, 404],
)
async def delete_room(request: web.Request, path: RoomPath, principal: Principal) -> web.Response:
    """The owner or an admin. Members already inside keep their peer connections."""
    row = await _visible_room(request, path.room_id, principal)
    if row["owner_id"] != principal.user_id and not principal.is_at_least(Role.admin):
        raise Forbidden("only the room's owner or an admin can delete it")
    async with transaction(request.app[db_key]) as conn:
        await rooms.delete(conn, path.room_id)
    return web.Response(status=204)


@endpoint(
    summary="Offer to the server peer (WHIP-style)",
    tags=["webrtc"],
    body=OfferIn,
    auth=REALTIME,
    response=AnswerOut,
    status=201,
    errors=[400, 404, 503],
)
async def offer(request: web.Request, body: OfferIn, principal: Principal) -> web.Response:
    """For simple clients without signaling: post an SDP offer (with its candidates; the
    server's answer contains all of its own), get the answer. Data channels `echo` and
    hub channel names, and media echo, work as through signaling. The peer lives until its
    connection fails or closes."""
    room = None
    if body.room is not None:
        room = await _visible_room(request, body.room, principal)
    try:
        peer, sdp = await request.app[peers_key].offer(
            principal, body.sdp, room=room, client_id=None
        )
    except ProtocolError as error:
        status = ServiceUnavailable if error.code.startswith("too_many") else BadRequest
        raise status(error.message, code=error.code) from None
    return json_response(AnswerOut(sdp=sdp, peer_id=peer.id), status=201)


@endpoint(
    summary="STUN and TURN servers, with a TURN credential for you",
    tags=["webrtc"],
    auth=REALTIME,
    response=IceServersOut,
)
async def ice_servers(request: web.Request, principal: Principal) -> web.Response:
    """The TURN credential is coturn's time-limited kind (`use-auth-secret`): user name
    `<expiry unix time>:<user id>`, valid TURN_TTL seconds; fetch a new one for each peer
    connection. The server peer uses the same servers with credentials of its own."""
    settings = request.app[settings_key]
    now = int(time.time())
    servers = ice_server_list(settings, str(principal.user_id), now)
    body = {
        "ice_servers": [
            IceServerOut.model_validate(entry).model_dump(exclude_none=True) for entry in servers
        ],
        "expires_at": now + settings.TURN_TTL if settings.TURN_URLS.strip() else None,
    }
    return json_response(body, headers={"Cache-Control": "no-store"})


@endpoint(
    summary="Server peers of this node",
    tags=["webrtc"],
    auth=Access(role=Role.admin, scope="admin"),
    response=PeersOut,
)
async def list_peers(request: web.Request, principal: Principal) -> web.Response:
    """Each peer's state, owner, room, data channels, timings and byte counts."""
    return json_response(PeersOut(peers=await request.app[peers_key].stats()))
