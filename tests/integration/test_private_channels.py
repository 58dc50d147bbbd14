"""Private channels over REST and WebSocket: creating one, managing its members (owner and
admins only), membership enforced on subscribe, publish, presence and history, and a
removal ending the member's live subscription. Other transports:
test_private_channels_transports.py."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.test_realtime_channels import error_for, publish, subscribe
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.asyncapi import Document, fetch


def fresh_name() -> str:
    return f"proj-{uuid.uuid4().hex[:10]}"


async def create_channel(client: Any, owner: Account, name: str | None = None) -> str:
    """A new private channel owned by `owner`; its full name."""
    response = await client.post(
        "/realtime/private-channels", json={"name": name or fresh_name()}, headers=owner.headers
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["owner_id"] == owner.id and body["role"] == "owner"
    return str(body["channel"])


def members_url(channel: str, user_id: int | None = None) -> str:
    base = f"/realtime/private-channels/{channel.partition(':')[2]}/members"
    return base if user_id is None else f"{base}/{user_id}"


async def add_member(client: Any, by: Account, channel: str, user_id: int) -> None:
    response = await client.put(members_url(channel, user_id), headers=by.headers)
    assert response.status == 200, await response.text()


async def error_code(response: Any) -> tuple[int, str]:
    body = await response.json()
    return response.status, body["error"]["code"]


async def test_owner_adds_lists_and_removes_members(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    await add_member(client, alice, channel, bob.id)  # again: nothing changes
    response = await client.get(members_url(channel), headers=bob.headers)
    assert response.status == 200
    body = await response.json()
    assert body["channel"] == channel and body["owner_id"] == alice.id
    assert [(m["user_id"], m["role"]) for m in body["members"]] == [
        (alice.id, "owner"),
        (bob.id, "member"),
    ]
    listed = await (await client.get("/realtime/private-channels", headers=bob.headers)).json()
    assert [c["channel"] for c in listed if c["channel"] == channel] == [channel]
    response = await client.delete(members_url(channel, bob.id), headers=alice.headers)
    assert response.status == 204
    response = await client.get(members_url(channel), headers=bob.headers)
    assert await error_code(response) == (404, "unknown_channel")


async def test_only_the_owner_or_an_admin_manages_members(
    client: Any, alice: Account, bob: Account, admin: Account, superuser: Account
) -> None:
    channel = await create_channel(client, alice)
    # a stranger does not even see it
    for method in ("get", "put", "delete"):
        url = members_url(channel) if method == "get" else members_url(channel, bob.id)
        response = await getattr(client, method)(url, headers=bob.headers)
        assert await error_code(response) == (404, "unknown_channel"), method
    # a member sees it but may not manage it
    await add_member(client, alice, channel, bob.id)
    response = await client.put(members_url(channel, superuser.id), headers=bob.headers)
    assert await error_code(response) == (403, "not_owner")
    response = await client.delete(members_url(channel, alice.id), headers=bob.headers)
    assert await error_code(response) == (403, "not_owner")
    # an admin may, without being a member
    await add_member(client, admin, channel, superuser.id)
    response = await client.delete(members_url(channel, superuser.id), headers=admin.headers)
    assert response.status == 204
    # nobody removes the owner
    response = await client.delete(members_url(channel, alice.id), headers=admin.headers)
    assert await error_code(response) == (409, "owner")


async def test_names_clashes_unknown_users_and_garbage_get_clear_errors(
    client: Any, alice: Account
) -> None:
    name = fresh_name()
    channel = await create_channel(client, alice, name)
    response = await client.post(
        "/realtime/private-channels", json={"name": name}, headers=alice.headers
    )
    assert await error_code(response) == (409, "channel_exists")
    garbage: list[Any] = [
        {},
        {"name": ""},
        {"name": "a:b"},
        {"name": ".x"},
        {"name": "x" * 129},
        {"name": 5},
        {"name": "ok", "extra": 1},
        [],
        "garbage",
    ]
    for body in garbage:
        response = await client.post("/realtime/private-channels", json=body, headers=alice.headers)
        assert response.status in (400, 422), (body, await response.text())
        assert "code" in (await response.json())["error"]
    response = await client.post(
        "/realtime/private-channels",
        data=b"{not json",
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert response.status == 400
    response = await client.put(members_url(channel, 2**62), headers=alice.headers)
    assert await error_code(response) == (404, "unknown_user")
    for user_id in ("abc", "0", "-1", str(2**64)):
        response = await client.put(
            f"/realtime/private-channels/{name}/members/{user_id}", headers=alice.headers
        )
        assert response.status == 422, user_id
        assert (await response.json())["error"]["code"] == "validation_error"
    response = await client.delete(members_url(channel, 2**62), headers=alice.headers)
    assert await error_code(response) == (404, "not_member")
    response = await client.post("/realtime/private-channels", json={"name": "x"})
    assert response.status == 401


async def test_membership_decides_subscribe_publish_presence_and_history_over_websocket(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    owner = await connect(client, alice)
    first = await subscribe(owner, channel)
    await publish(owner, channel, {"n": 1})
    stranger = await connect(client, bob)
    refused = [
        {"type": "subscribe", "channel": channel},
        {"type": "subscribe", "channel": channel, "since": first["cursor"]},  # history
        {"type": "publish", "channel": channel, "data": 1},
        {"type": "presence", "channel": channel},
    ]
    for frame in refused:
        error = await error_for(stranger, frame)
        assert error["code"] == "forbidden", (frame, error)
    # the connection is fine
    await stranger.send_json({"type": "ping", "id": 1})
    assert (await next_of(stranger, "pong"))["id"] == 1

    await add_member(client, alice, channel, bob.id)
    replay = await subscribe(stranger, channel, since=first["cursor"])
    assert [p["data"] for p in replay["publications"]] == [{"n": 1}]
    await stranger.send_json({"type": "presence", "channel": channel, "id": "p"})
    members = (await next_of(stranger, "presence"))["members"]
    assert {m["user_id"] for m in members} == {alice.id, bob.id}
    await publish(stranger, channel, {"n": 2})
    assert (await next_of(owner, "publication"))["data"] == {"n": 1}
    assert (await next_of(owner, "publication"))["data"] == {"n": 2}
    await owner.close()
    await stranger.close()


async def test_a_member_publishes_only_once_subscribed(
    client: Any, alice: Account, bob: Account
) -> None:
    """Publishing checks no membership lookup: the live subscription is the proof."""
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    ws = await connect(client, bob)
    error = await error_for(ws, {"type": "publish", "channel": channel, "data": 1})
    assert error["code"] == "forbidden" and "subscribe" in error["message"]
    await subscribe(ws, channel)
    await publish(ws, channel, 1)
    await ws.close()


async def test_admins_use_private_channels_without_membership(
    client: Any, alice: Account, admin: Account
) -> None:
    channel = await create_channel(client, alice)
    ws = await connect(client, admin)
    await subscribe(ws, channel)
    await publish(ws, channel, "from an admin")
    await ws.send_json({"type": "presence", "channel": channel})
    assert (await next_of(ws, "presence"))["channel"] == channel
    await ws.close()


async def test_removing_a_member_ends_their_live_subscription(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    ws = await connect(client, bob)
    await subscribe(ws, channel)
    owner = await connect(client, alice)
    await subscribe(owner, channel)
    response = await client.delete(members_url(channel, bob.id), headers=alice.headers)
    assert response.status == 204
    frame = await next_of(ws, "unsubscribed")
    assert frame["channel"] == channel and frame["code"] == "removed"
    assert "removed" in frame["reason"]
    Document(await fetch(client)).check("websocket", "unsubscribed", frame, prefix="server.")
    # nothing more arrives for bob; the owner still gets publications
    await publish(owner, channel, "after")
    assert (await next_of(owner, "publication"))["data"] == "after"
    await ws.send_json({"type": "ping", "id": "q"})
    assert (await ws.receive_json(timeout=5)) == {"type": "pong", "data": None, "id": "q"}
    error = await error_for(ws, {"type": "subscribe", "channel": channel})
    assert error["code"] == "forbidden"
    error = await error_for(ws, {"type": "publish", "channel": channel, "data": 1})
    assert error["code"] == "forbidden"
    await ws.close()
    await owner.close()


async def test_deleting_a_channel_ends_every_members_subscription(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = await create_channel(client, alice)
    await add_member(client, alice, channel, bob.id)
    ws = await connect(client, bob)
    await subscribe(ws, channel)
    response = await client.delete(
        f"/realtime/private-channels/{channel.partition(':')[2]}", headers=bob.headers
    )
    assert await error_code(response) == (403, "not_owner")
    response = await client.delete(
        f"/realtime/private-channels/{channel.partition(':')[2]}", headers=alice.headers
    )
    assert response.status == 204
    frame = await next_of(ws, "unsubscribed")
    assert frame["channel"] == channel and frame["code"] == "removed"
    await ws.close()


async def test_the_subscribe_frame_documents_its_token(client: Any) -> None:
    document = Document(await fetch(client))
    [subscribe_message] = [
        m for m in document.messages("websocket").values() if m["name"] == "subscribe"
    ]
    schema = document.resolve(subscribe_message["payload"]["$ref"])
    assert schema["properties"]["token"]["anyOf"][0]["maxLength"] == 4096


@pytest.mark.parametrize("token", [5, "", "x" * 5000, ["a"], {"a": 1}])
async def test_a_malformed_token_field_is_invalid(client: Any, alice: Account, token: Any) -> None:
    ws = await connect(client, alice)
    error = await error_for(ws, {"type": "subscribe", "channel": "public:x", "token": token})
    assert error["code"] == "invalid", error
    await ws.close()
