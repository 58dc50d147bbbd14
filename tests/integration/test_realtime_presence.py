"""Presence: who is subscribed to a `public:*` channel (WebSocket `presence` and GET
/realtime/channels/{name}/presence), join/leave events, and namespaces without presence."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.integration.test_realtime_channels import (
    assert_answers_ping,
    error_for,
    open_sse,
    sse_events,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.waiting import eventually


async def hello_of(client: Any, account: Account) -> tuple[Any, dict[str, Any]]:
    ws = await client.ws_connect("/realtime/ws", headers=account.headers)
    hello: dict[str, Any] = await ws.receive_json(timeout=5)
    return ws, hello


async def members_via_ws(ws: Any, channel: str) -> list[dict[str, Any]]:
    await ws.send_json({"type": "presence", "channel": channel, "id": "p"})
    reply = await next_of(ws, "presence")
    assert (reply["channel"], reply["id"]) == (channel, "p")
    members: list[dict[str, Any]] = reply["members"]
    return members


async def members_via_rest(client: Any, account: Account, channel: str) -> list[dict[str, Any]]:
    response = await client.get(f"/realtime/channels/{channel}/presence", headers=account.headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["channel"] == channel
    members: list[dict[str, Any]] = body["members"]
    return members


async def event_of(ws: Any, kind: str, client_id: str) -> dict[str, Any]:
    """The next join/leave about this client (a subscriber may see its own join too)."""
    while True:
        frame = await next_of(ws, kind)
        if frame["info"]["client_id"] == client_id:
            return frame


def as_set(members: list[dict[str, Any]]) -> set[tuple[int, str, str]]:
    return {(m["user_id"], m["client_id"], m["transport"]) for m in members}


async def test_members_are_listed_and_leave_when_disconnected(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = unique()
    a, hello_a = await hello_of(client, alice)
    b, hello_b = await hello_of(client, bob)
    await subscribe(a, channel)
    await subscribe(b, channel)
    both = {(alice.id, hello_a["client_id"], "ws"), (bob.id, hello_b["client_id"], "ws")}
    assert as_set(await members_via_ws(a, channel)) == both
    assert as_set(await members_via_rest(client, bob, channel)) == both

    await b.close()

    async def only_alice() -> bool:
        return as_set(await members_via_rest(client, alice, channel)) == {
            (alice.id, hello_a["client_id"], "ws")
        }

    await eventually(only_alice, timeout=5)
    assert as_set(await members_via_ws(a, channel)) == {(alice.id, hello_a["client_id"], "ws")}
    await a.close()


async def test_presence_of_a_channel_you_are_not_in(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    assert await members_via_ws(ws, unique()) == []
    await ws.close()


async def test_unsubscribe_removes_the_member_and_sse_members_are_listed(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = unique()
    ws, hello = await hello_of(client, alice)
    await subscribe(ws, channel)
    stream, connected = await open_sse(client, bob, [channel])
    sse_id = connected["client_id"]
    assert as_set(await members_via_rest(client, alice, channel)) == {
        (alice.id, hello["client_id"], "ws"),
        (bob.id, sse_id, "sse"),
    }
    await ws.send_json({"type": "unsubscribe", "channel": channel})
    await next_of(ws, "unsubscribed")
    assert as_set(await members_via_ws(ws, channel)) == {(bob.id, sse_id, "sse")}
    stream.close()
    await ws.close()


async def test_join_and_leave_events(client: Any, alice: Account, bob: Account) -> None:
    channel = unique()
    watcher = await connect(client, alice)
    await subscribe(watcher, channel)
    b, hello_b = await hello_of(client, bob)
    await subscribe(b, channel)
    info = {"client_id": hello_b["client_id"], "user_id": bob.id, "transport": "ws"}
    bob_id = hello_b["client_id"]
    joined = await event_of(watcher, "join", bob_id)
    assert joined == {"type": "join", "channel": channel, "info": info}
    await b.send_json({"type": "unsubscribe", "channel": channel})
    left = await event_of(watcher, "leave", bob_id)
    assert left == {"type": "leave", "channel": channel, "info": info}
    await subscribe(b, channel)
    await event_of(watcher, "join", bob_id)
    await b.close()  # a disconnect is a leave too
    await event_of(watcher, "leave", bob_id)
    await watcher.close()


async def test_join_and_leave_reach_sse_subscribers(
    client: Any, alice: Account, bob: Account
) -> None:
    channel = unique()
    stream, _ = await open_sse(client, alice, [channel])
    ws = await connect(client, bob)
    await subscribe(ws, channel)
    await ws.close()
    events: list[dict[str, Any]] = []
    while len(events) < 2:
        [event] = await sse_events(stream, 1, skip=("subscribed",))
        if orjson.loads(event["data"])["info"]["user_id"] == bob.id:  # not alice's own join
            events.append(event)
    assert [e["event"] for e in events] == ["join", "leave"]
    assert all("id" not in e for e in events)  # not publications: no cursor
    assert orjson.loads(events[1]["data"])["channel"] == channel
    stream.close()


@pytest.mark.parametrize("namespace", ["user", "admin", "system"])
async def test_namespaces_without_presence(
    client: Any, alice: Account, admin: Account, namespace: str
) -> None:
    channel = f"user:{admin.id}" if namespace == "user" else unique(namespace)
    channel = "system" if namespace == "system" else channel
    ws = await connect(client, admin)
    error = await error_for(ws, {"type": "presence", "channel": channel, "id": 4})
    assert (error["code"], error["ref"]) == ("presence_disabled", 4)
    await assert_answers_ping(ws)
    response = await client.get(f"/realtime/channels/{channel}/presence", headers=admin.headers)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "presence_disabled"
    await ws.close()


async def test_user_channels_get_no_join_events(
    client: Any, alice: Account, admin: Account
) -> None:
    watcher = await connect(client, admin)
    await subscribe(watcher, f"user:{alice.id}")
    ws = await connect(client, alice)
    await subscribe(ws, f"user:{alice.id}")
    await ws.close()
    await watcher.send_json({"type": "ping", "id": "last"})
    assert (await watcher.receive_json(timeout=5))["type"] == "pong"
    await watcher.close()


async def test_presence_permissions_over_rest(client: Any, alice: Account, bob: Account) -> None:
    forbidden = await client.get(
        f"/realtime/channels/user:{bob.id}/presence", headers=alice.headers
    )
    assert forbidden.status == 403
    admin_only = await client.get("/realtime/channels/admin:x/presence", headers=alice.headers)
    assert admin_only.status == 403
    bad = await client.get("/realtime/channels/a:b:c/presence", headers=alice.headers)
    assert bad.status == 400
    assert (await bad.json())["error"]["code"] == "bad_channel"
    anonymous = await client.get(f"/realtime/channels/{unique()}/presence")
    assert anonymous.status == 401
    ws = await connect(client, alice)
    error = await error_for(ws, {"type": "presence", "channel": f"user:{bob.id}"})
    assert error["code"] == "forbidden"
    await ws.close()
