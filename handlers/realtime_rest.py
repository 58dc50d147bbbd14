"""REST around the realtime hub: send, broadcast, notifications, presence, stats."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from handlers.http import json_response
from handlers.openapi import endpoint
from server.hub.hub import hub_key
from server.hub.notifications import notification_event
from server.kernel.errors import BadRequest, Forbidden, ServiceUnavailable
from server.kernel.principal import Access, Principal, Role
from server.kernel.realtime_errors import ProtocolError
from storage import notifications
from storage.db import db_key, transaction

REALTIME = Access(scope="realtime")
REALTIME_ADMIN = Access(role=Role.admin, scope="realtime")


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SendIn(Input):
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)
    client_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    data: JsonValue

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.user_id is None) == (self.client_id is None):
            raise ValueError("give exactly one of user_id and client_id")
        return self


class BroadcastIn(Input):
    channel: str = Field(max_length=161)
    data: JsonValue


class Sent(BaseModel):
    channel: str | None = None
    offset: int | None = None
    cursor: str | None = None


class NotificationIn(Input):
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)
    channel: str | None = Field(None, max_length=161)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=5000)
    level: Literal["info", "success", "warning", "error"] = "info"
    data: JsonValue = None

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.user_id is None) == (self.channel is None):
            raise ValueError("give exactly one of user_id and channel")
        return self


class NotificationOut(BaseModel):
    id: int
    user_id: int | None
    channel: str | None
    title: str
    body: str
    level: str
    data: Any = None
    created_at: datetime
    read_at: datetime | None
    cursor: str | None = None


class ChannelPath(Input):
    name: str = Field(max_length=161)


class PresenceOut(BaseModel):
    channel: str
    members: list[dict[str, Any]]


class StatsOut(BaseModel):
    nodes: list[dict[str, Any]]
    totals: dict[str, int]


def _sender(principal: Principal) -> dict[str, Any]:
    return {"user_id": principal.user_id, "client_id": None}


def _channel(request: web.Request, name: str) -> Any:
    try:
        return request.app[hub_key].parse_channel(name)
    except ProtocolError as error:
        raise BadRequest(error.message, code=error.code) from None


@endpoint(
    summary="Send to a user or a connection",
    tags=["realtime"],
    body=SendIn,
    auth=REALTIME,
    response=Sent,
    status=202,
)
async def send(request: web.Request, body: SendIn, principal: Principal) -> web.Response:
    """To `user_id`: a publication on `user:<id>` (kept in its history; every connection
    of that user receives it). To `client_id`: one connection, wherever it is; only your
    own connections unless you are an admin."""
    hub = request.app[hub_key]
    data = orjson.dumps(body.data)
    if body.user_id is not None:
        position = await hub.publish(f"user:{body.user_id}", data, _sender(principal))
        return json_response(
            Sent(channel=f"user:{body.user_id}", offset=position.offset, cursor=position.cursor),
            status=202,
        )
    frame = {"type": "message", "data": body.data, "from": _sender(principal)}
    assert body.client_id is not None  # the model demands exactly one target
    await hub.send_to_client(
        body.client_id, frame, sender_id=principal.user_id, admin=principal.is_at_least(Role.admin)
    )
    return json_response(Sent(), status=202)


@endpoint(
    summary="Publish on a channel as the server",
    tags=["realtime"],
    body=BroadcastIn,
    auth=REALTIME_ADMIN,
    response=Sent,
    status=202,
    errors=[400],
)
async def broadcast(request: web.Request, body: BroadcastIn, principal: Principal) -> web.Response:
    """Any channel, including server-only ones (`system`, `user:<id>`). Admins, and API keys
    of admins with the `realtime` scope."""
    channel = _channel(request, body.channel)
    position = await request.app[hub_key].publish(
        channel.name, orjson.dumps(body.data), _sender(principal)
    )
    return json_response(
        Sent(channel=channel.name, offset=position.offset, cursor=position.cursor), status=202
    )


@endpoint(
    summary="Store a notification and push it",
    tags=["realtime"],
    body=NotificationIn,
    auth=REALTIME_ADMIN,
    response=NotificationOut,
    status=201,
    errors=[400],
)
async def send_notification(
    request: web.Request, body: NotificationIn, principal: Principal
) -> web.Response:
    """Stored first (the user can list it later), then published on `user:<id>` or the
    channel as `{"kind": "notification", ...}`."""
    name = (
        f"user:{body.user_id}"
        if body.user_id is not None
        else _channel(request, body.channel or "").name
    )
    async with transaction(request.app[db_key]) as conn:
        row = await notifications.create(
            conn,
            user_id=body.user_id,
            channel=body.channel,
            title=body.title,
            body=body.body,
            level=body.level,
            data=body.data,
        )
    event = orjson.dumps(notification_event(row))
    position = await request.app[hub_key].publish(name, event, _sender(principal))
    out = NotificationOut.model_validate(row)
    out.cursor = position.cursor
    return json_response(out, status=201)


@endpoint(
    summary="Who is in a channel",
    tags=["realtime"],
    path=ChannelPath,
    auth=REALTIME,
    response=PresenceOut,
    errors=[400],
)
async def presence(request: web.Request, path: ChannelPath, principal: Principal) -> web.Response:
    hub = request.app[hub_key]
    channel = _channel(request, path.name)
    try:
        hub.check(hub.channels.check_subscribe, principal, channel)
    except ProtocolError as error:
        raise Forbidden(error.message, code=error.code) from None
    if not channel.namespace.presence:
        raise BadRequest(
            f"{channel.namespace.name} channels have no presence", code="presence_disabled"
        )
    return json_response(
        PresenceOut(channel=channel.name, members=await hub.presence.members(channel.name))
    )


@endpoint(
    summary="Realtime statistics of every node",
    tags=["realtime"],
    auth=Access(role=Role.admin, scope="admin"),
    response=StatsOut,
    errors=[503],
)
async def stats(request: web.Request, principal: Principal) -> web.Response:
    """Connections, channels, queue depths and counters per node (nodes report every 5 s)."""
    hub = request.app[hub_key]
    try:
        nodes = await hub.cluster_stats()
    except OSError as error:
        raise ServiceUnavailable(f"Redis is unavailable: {error}") from None
    totals: dict[str, int] = {}
    for node in nodes:
        for key in ("connections", "channels", "queued_messages", "published", "delivered"):
            totals[key] = totals.get(key, 0) + int(node.get(key, 0))
    return json_response(StatsOut(nodes=nodes, totals=totals))
