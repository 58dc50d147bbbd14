"""/realtime/private-channels: channels an application controls. A user creates
`private:<name>` and owns it; the owner and admins add and remove members; members (and
admins) may subscribe, publish and see presence there. A channel you may not see is 404.
Removing a member ends their live subscriptions to it on every node (server/hub/private.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from handlers.http import json_response
from handlers.openapi import endpoint
from server.hub.hub import hub_key
from server.kernel.errors import Conflict, Forbidden, IntegrityViolation, NotFound
from server.kernel.principal import Access, Principal, Role
from server.kernel.settings import settings_key
from storage import private_channels
from storage.db import Row, db_key, transaction

REALTIME = Access(scope="realtime")
NAMESPACE = "private"

Name = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,127}$",
        description="The part after `private:`: letters, digits and `_ . @ -` (not first: `.`).",
    ),
]
UserId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class ChannelOut(BaseModel):
    channel: str = Field(description="The channel to subscribe to: `private:<name>`.")
    name: str
    owner_id: int
    created_at: datetime
    role: Literal["owner", "member"] | None = Field(
        description="Yours there (null: an admin who is not a member)."
    )


class MemberOut(BaseModel):
    user_id: int
    role: Literal["owner", "member"]
    added_at: datetime


class MembersOut(BaseModel):
    channel: str
    owner_id: int
    members: list[MemberOut] = Field(description="The owner first; at most 1000.")


class ChannelPath(BaseModel):
    name: Name


class MemberPath(BaseModel):
    name: Name
    user_id: UserId


def _channel_out(row: Row, role: str | None) -> ChannelOut:
    channel = row["channel"]
    return ChannelOut(
        channel=channel,
        name=channel.partition(":")[2],
        owner_id=row["owner_id"],
        created_at=row["created_at"],
        role=role,
    )


async def _visible(request: web.Request, name: str, principal: Principal) -> tuple[Row, str | None]:
    """The channel and the caller's role there; 404 unless a member or an admin."""
    channel = f"{NAMESPACE}:{name}"
    async with transaction(request.app[db_key]) as conn:
        row = await private_channels.get(conn, channel)
        role = await private_channels.role_of(conn, channel, principal.user_id) if row else None
    if row is None or (role is None and not principal.is_at_least(Role.admin)):
        raise NotFound(f"no private channel {channel!r} you can see", code="unknown_channel")
    return row, role


async def _managed(request: web.Request, name: str, principal: Principal) -> Row:
    row, role = await _visible(request, name, principal)
    if role != "owner" and not principal.is_at_least(Role.admin):
        raise Forbidden(
            "only the channel's owner or an admin manages its members", code="not_owner"
        )
    return row


@endpoint(
    summary="Create a private channel",
    tags=["private channels"],
    body=ChannelIn,
    auth=REALTIME,
    response=ChannelOut,
    status=201,
    errors=[409],
)
async def create_channel(
    request: web.Request, body: ChannelIn, principal: Principal
) -> web.Response:
    """You own it and are its first member; subscribe to the `channel` it names."""
    channel = f"{NAMESPACE}:{body.name}"
    hub = request.app[hub_key]
    # No cached answer about an earlier channel of this name applies (its deletion's cleanup
    # may have failed). The name may be taken: its history is left alone until it is ours.
    await hub.membership.reset(channel)
    limit = request.app[settings_key].PRIVATE_CHANNELS_PER_USER
    async with transaction(request.app[db_key]) as conn:
        owned = await private_channels.count_owned(conn, principal.user_id)
        if owned >= limit and not principal.is_at_least(Role.admin):
            raise Conflict(
                f"you own {owned} private channels, the most allowed "
                f"(PRIVATE_CHANNELS_PER_USER={limit}): delete one first",
                code="too_many_channels",
            )
        row = await private_channels.create(conn, channel, principal.user_id)
    if row is None:
        raise Conflict(f"{channel} exists already", code="channel_exists")
    # Again (a lookup made meanwhile may have cached "not a member" for the owner), and
    # no history of an earlier channel of this name (or of admins' publications) stays.
    await hub.private_channel_created(channel)
    return json_response(_channel_out(row, "owner"), status=201)


@endpoint(
    summary="Private channels you are a member of (admins: all)",
    tags=["private channels"],
    auth=REALTIME,
    response=list[ChannelOut],
)
async def list_channels(request: web.Request, principal: Principal) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        rows = await private_channels.visible(
            conn, principal.user_id, everything=principal.is_at_least(Role.admin)
        )
    return json_response([_channel_out(row, row["role"]) for row in rows])


@endpoint(
    summary="Delete a private channel",
    tags=["private channels"],
    path=ChannelPath,
    auth=REALTIME,
    status=204,
    errors=[403, 404],
)
async def delete_channel(
    request: web.Request, path: ChannelPath, principal: Principal
) -> web.Response:
    """The owner or an admin. Every member's live subscriptions to it end."""
    row = await _managed(request, path.name, principal)
    async with transaction(request.app[db_key]) as conn:
        deleted = await private_channels.delete(conn, row["channel"])
    if not deleted:  # deleted meanwhile by someone else, who ended the subscriptions
        raise NotFound(f"no private channel {row['channel']!r}", code="unknown_channel")
    await channel_deleted(request.app, [row["channel"]])
    return web.Response(status=204)


async def channel_deleted(app: web.Application, channels: list[str]) -> None:
    """After the deletion of these channels was committed (DELETE, or their owner's account
    deleted: handlers/users.py): their history and cached answers go, and every node ends
    their members' subscriptions."""
    for channel in channels:
        await app[hub_key].private_channel_deleted(channel, "the channel was deleted")


@endpoint(
    summary="Members of a private channel",
    tags=["private channels"],
    path=ChannelPath,
    auth=REALTIME,
    response=MembersOut,
    errors=[404],
)
async def list_members(
    request: web.Request, path: ChannelPath, principal: Principal
) -> web.Response:
    """Its members (and admins) may list them."""
    row, _ = await _visible(request, path.name, principal)
    async with transaction(request.app[db_key]) as conn:
        rows = await private_channels.members(conn, row["channel"])
    members = [MemberOut.model_validate(member) for member in rows]
    return json_response(
        MembersOut(channel=row["channel"], owner_id=row["owner_id"], members=members)
    )


@endpoint(
    summary="Add a member to a private channel",
    tags=["private channels"],
    path=MemberPath,
    auth=REALTIME,
    response=MemberOut,
    errors=[403, 404],
)
async def add_member(request: web.Request, path: MemberPath, principal: Principal) -> web.Response:
    """The owner or an admin. Adding a member again changes nothing."""
    row = await _managed(request, path.name, principal)
    try:
        async with transaction(request.app[db_key]) as conn:
            member = await private_channels.add_member(conn, row["channel"], path.user_id)
    except IntegrityViolation:  # the channel was deleted meanwhile (or the user)
        raise NotFound(f"no private channel {row['channel']!r}", code="unknown_channel") from None
    if member is None:
        raise NotFound(f"user {path.user_id} does not exist", code="unknown_user")
    await request.app[hub_key].membership.changed(row["channel"], [path.user_id])
    return json_response(MemberOut.model_validate(member))


@endpoint(
    summary="Remove a member from a private channel",
    tags=["private channels"],
    path=MemberPath,
    auth=REALTIME,
    status=204,
    errors=[403, 404, 409],
)
async def remove_member(
    request: web.Request, path: MemberPath, principal: Principal
) -> web.Response:
    """The owner or an admin; the owner cannot be removed (delete the channel instead).
    The member's live subscriptions to the channel end at once, on every node, with an
    `unsubscribed` frame (`code: "removed"`)."""
    row = await _managed(request, path.name, principal)
    if path.user_id == row["owner_id"]:
        raise Conflict("the owner cannot be removed; delete the channel", code="owner")
    async with transaction(request.app[db_key]) as conn:
        removed = await private_channels.remove_member(conn, row["channel"], path.user_id)
    # Even when there was nothing to remove: a retry after Redis failed mid-way heals.
    await request.app[hub_key].membership.removed(
        row["channel"], [path.user_id], "removed from the channel's members"
    )
    if not removed:
        raise NotFound(f"user {path.user_id} is not a member", code="not_member")
    return web.Response(status=204)
