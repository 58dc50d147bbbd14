"""REST around the realtime hub: send, broadcast, notifications, presence, stats."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal, Self

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from handlers.http import json_response
from handlers.openapi import endpoint
from handlers.openapi_rules import FromSettings
from server.hub.channels import MAX_CHANNEL_LENGTH
from server.hub.hub import hub_key
from server.hub.notifications import notification_event
from server.kernel.errors import (
    BadRequest,
    Forbidden,
    IntegrityViolation,
    NotFound,
    ServiceUnavailable,
)
from server.kernel.jsonutil import dumps
from server.kernel.namespaces import parse_namespaces
from server.kernel.principal import Access, Principal, Role
from server.kernel.realtime_errors import ProtocolError
from server.kernel.settings import Settings
from storage import notifications
from storage.db import db_key, transaction

REALTIME = Access(scope="realtime")
REALTIME_ADMIN = Access(role=Role.admin, scope="realtime")


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def exactly_one(**types: str) -> dict[str, Any]:
    """The schema of "exactly one of these fields is given and not null" (a model validator
    enforces it): a body matches one branch per such field."""
    return {
        "oneOf": [
            {"required": [name], "properties": {name: {"type": kind}}}
            for name, kind in types.items()
        ]
    }


def channel_pattern(settings: Settings, *, presence_only: bool = False) -> dict[str, Any]:
    """The channel names server/hub/channels.py accepts with these settings' namespaces:
    `user:<digits>`, or another namespace, bare or with `:name`."""
    namespaces = parse_namespaces(settings.CHANNEL_NAMESPACES)
    names = [n for n, ns in sorted(namespaces.items()) if ns.presence or not presence_only]
    choices = ["user:[0-9]{1,128}"] if "user" in names else []
    others = [name for name in names if name != "user"]
    if others:
        choices.append(f"(?:{'|'.join(others)})(?::[A-Za-z0-9_.@-]{{1,128}})?")
    return {"pattern": f"^(?:{'|'.join(choices)})$"}


CHANNEL_RULE = FromSettings("channel", channel_pattern)
ChannelName = Annotated[str, Field(max_length=MAX_CHANNEL_LENGTH), CHANNEL_RULE]
PresenceChannelName = Annotated[
    str,
    Field(max_length=MAX_CHANNEL_LENGTH, description="A channel of a namespace with presence."),
    FromSettings("presence_channel", partial(channel_pattern, presence_only=True)),
]


class SendIn(Input):
    model_config = ConfigDict(json_schema_extra=exactly_one(user_id="integer", client_id="string"))
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)
    client_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    data: JsonValue

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.user_id is None) == (self.client_id is None):
            raise ValueError("give exactly one of user_id and client_id")
        return self


class BroadcastIn(Input):
    channel: ChannelName
    data: JsonValue


class Sent(BaseModel):
    channel: str | None = None
    offset: int | None = None
    cursor: str | None = None


class NotificationIn(Input):
    model_config = ConfigDict(json_schema_extra=exactly_one(user_id="integer", channel="string"))
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)
    channel: ChannelName | None = None
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
    name: PresenceChannelName


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
    errors=[400, 404],
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
    try:
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
    except IntegrityViolation:  # the only reference a notification holds is its user
        raise NotFound(f"user {body.user_id} does not exist", code="unknown_user") from None
    event = dumps(notification_event(row))  # stored data may hold integers beyond 64 bits
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
        await hub.subscriptions.check_presence(None, principal, channel)
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
