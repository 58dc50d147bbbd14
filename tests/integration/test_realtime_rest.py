"""REST around the hub: POST /realtime/send (to a user or one connection), /broadcast
(admins), /notifications/send (stored, then pushed) and GET /realtime/stats."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from storage.db import transaction
from tests.integration.test_auth_tickets import create_key
from tests.integration.test_realtime_channels import (
    assert_quiet,
    open_sse,
    publications,
    sse_events,
    subscribe,
    unique,
)
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account


async def hello_ws(client: Any, account: Account) -> tuple[Any, dict[str, Any]]:
    ws = await client.ws_connect("/realtime/ws", headers=account.headers)
    hello: dict[str, Any] = await ws.receive_json(timeout=5)
    return ws, hello


async def post(client: Any, path: str, account: Account, body: Any, status: int) -> Any:
    response = await client.post(path, json=body, headers=account.headers)
    assert response.status == status, await response.text()
    return await response.json()


async def test_send_to_a_user_reaches_their_user_channel(
    client: Any, alice: Account, bob: Account
) -> None:
    ws = await connect(client, bob)
    await subscribe(ws, f"user:{bob.id}")
    sent = await post(
        client, "/realtime/send", alice, {"user_id": bob.id, "data": {"hi": [1, 2]}}, 202
    )
    assert sent["channel"] == f"user:{bob.id}" and sent["offset"] >= 1
    [p] = await publications(ws, 1)
    assert p["data"] == {"hi": [1, 2]}
    assert p["cursor"] == sent["cursor"]
    assert p["from"] == {"user_id": alice.id, "client_id": None}
    await ws.close()


async def test_send_to_your_own_connection(client: Any, alice: Account) -> None:
    target, hello = await hello_ws(client, alice)
    other, _ = await hello_ws(client, alice)
    body = {"client_id": hello["client_id"], "data": "just you"}
    assert await post(client, "/realtime/send", alice, body, 202) == {
        "channel": None,
        "offset": None,
        "cursor": None,
    }
    message = await next_of(target, "message")
    assert message == {
        "type": "message",
        "data": "just you",
        "from": {"user_id": alice.id, "client_id": None},
    }
    await assert_quiet(other)
    await target.close()
    await other.close()


async def test_a_strangers_send_to_your_connection_is_not_delivered(
    client: Any, alice: Account, bob: Account, admin: Account
) -> None:
    target, hello = await hello_ws(client, alice)
    for sender, data in ((bob, "from a stranger"), (admin, "from an admin"), (alice, "mine")):
        body = {"client_id": hello["client_id"], "data": data}
        await post(client, "/realtime/send", sender, body, 202)
    # all three went through the same Redis channel in order: the stranger's would be first
    assert (await next_of(target, "message"))["data"] == "from an admin"
    assert (await next_of(target, "message"))["data"] == "mine"
    await assert_quiet(target)
    await target.close()


async def test_send_to_a_connection_that_does_not_exist(client: Any, alice: Account) -> None:
    await post(client, "/realtime/send", alice, {"client_id": "0" * 32, "data": 1}, 202)


@pytest.mark.parametrize(
    "body",
    [
        {"data": 1},
        {"user_id": 1, "client_id": "0" * 32, "data": 1},
        {"user_id": 1},
        {"user_id": 0, "data": 1},
        {"client_id": "not-hex", "data": 1},
        {"user_id": 1, "data": 1, "extra": True},
    ],
)
async def test_send_validation(client: Any, alice: Account, body: dict[str, Any]) -> None:
    response = await client.post("/realtime/send", json=body, headers=alice.headers)
    assert response.status == 422


async def test_send_needs_credentials_and_the_realtime_scope(client: Any, alice: Account) -> None:
    body = {"user_id": alice.id, "data": 1}
    assert (await client.post("/realtime/send", json=body)).status == 401
    key = (await create_key(client, alice, ["read"]))["key"]
    response = await client.post("/realtime/send", json=body, headers={"X-API-Key": key})
    assert response.status == 403


async def test_broadcast_reaches_system_and_public_subscribers(
    client: Any, alice: Account, admin: Account
) -> None:
    public = unique()
    watcher, reader = await connect(client, admin), await connect(client, alice)
    await subscribe(watcher, "system")
    await subscribe(reader, public)
    stream, _ = await open_sse(client, alice, [public])
    for channel in ("system", public):
        sent = await post(
            client, "/realtime/broadcast", admin, {"channel": channel, "data": "notice"}, 202
        )
        assert sent["channel"] == channel
    [on_system] = await publications(watcher, 1)
    [on_public] = await publications(reader, 1)
    assert (on_system["channel"], on_system["data"]) == ("system", "notice")
    assert (on_public["channel"], on_public["data"]) == (public, "notice")
    [event] = await sse_events(stream, 1)
    assert orjson.loads(event["data"])["channel"] == public
    stream.close()
    await watcher.close()
    await reader.close()


async def test_broadcast_is_for_admins(client: Any, alice: Account, admin: Account) -> None:
    body = {"channel": unique(), "data": 1}
    response = await client.post("/realtime/broadcast", json=body, headers=alice.headers)
    assert response.status == 403
    assert (await client.post("/realtime/broadcast", json=body)).status == 401
    bad = await client.post(
        "/realtime/broadcast", json={"channel": "a:b:c", "data": 1}, headers=admin.headers
    )
    assert bad.status == 400
    assert (await bad.json())["error"]["code"] == "bad_channel"
    key = (await create_key(client, admin, ["realtime"]))["key"]
    by_key = await client.post("/realtime/broadcast", json=body, headers={"X-API-Key": key})
    assert by_key.status == 202


async def stored(db: Any, notification_id: int) -> dict[str, Any] | None:
    async with transaction(db) as conn:
        row: dict[str, Any] | None = await conn.fetch_one(
            "SELECT * FROM notifications WHERE id = %(id)s", {"id": notification_id}
        )
    return row


async def test_notification_to_a_user_is_stored_then_pushed(
    client: Any, db: Any, alice: Account, admin: Account
) -> None:
    ws = await connect(client, alice)
    await subscribe(ws, f"user:{alice.id}")
    body = {"user_id": alice.id, "title": "Hello", "body": "b", "level": "warning", "data": [1]}
    out = await post(client, "/realtime/notifications/send", admin, body, 201)
    row = await stored(db, out["id"])
    assert row is not None
    assert (row["user_id"], row["channel"], row["title"], row["body"], row["level"]) == (
        alice.id,
        None,
        "Hello",
        "b",
        "warning",
    )
    assert row["data"] == [1] and row["read_at"] is None
    [p] = await publications(ws, 1)
    assert p["cursor"] == out["cursor"]
    assert p["data"]["kind"] == "notification"
    assert {k: p["data"][k] for k in ("id", "user_id", "title", "body", "level", "data")} == {
        "id": out["id"],
        "user_id": alice.id,
        "title": "Hello",
        "body": "b",
        "level": "warning",
        "data": [1],
    }
    await ws.close()


async def test_notification_to_a_channel(
    client: Any, db: Any, alice: Account, admin: Account
) -> None:
    channel = unique()
    ws = await connect(client, alice)
    await subscribe(ws, channel)
    out = await post(
        client, "/realtime/notifications/send", admin, {"channel": channel, "title": "All"}, 201
    )
    assert (out["channel"], out["user_id"], out["level"]) == (channel, None, "info")
    row = await stored(db, out["id"])
    assert row is not None and row["channel"] == channel
    [p] = await publications(ws, 1)
    assert (p["channel"], p["data"]["kind"], p["data"]["title"]) == (channel, "notification", "All")
    await ws.close()


@pytest.mark.parametrize(
    "body",
    [
        {"title": "neither"},
        {"user_id": 1, "channel": "public:x", "title": "both"},
        {"user_id": 1},
        {"user_id": 1, "title": ""},
        {"user_id": 1, "title": "x", "level": "panic"},
        {"user_id": 1, "title": "x" * 201},
    ],
)
async def test_notification_validation(client: Any, admin: Account, body: dict[str, Any]) -> None:
    response = await client.post("/realtime/notifications/send", json=body, headers=admin.headers)
    assert response.status == 422


async def test_notifications_are_for_admins(client: Any, alice: Account) -> None:
    body = {"user_id": alice.id, "title": "self-service"}
    response = await client.post("/realtime/notifications/send", json=body, headers=alice.headers)
    assert response.status == 403


async def test_stats_count_this_nodes_connections(
    client: Any, alice: Account, bob: Account, admin: Account
) -> None:
    first, hello = await hello_ws(client, alice)
    second = await connect(client, bob)
    channel = unique()
    await subscribe(second, channel)
    stream, _ = await open_sse(client, alice, [unique()])
    response = await client.get("/realtime/stats", headers=admin.headers)
    assert response.status == 200
    body = await response.json()
    [node] = [n for n in body["nodes"] if n["node"] == hello["node"]]
    assert node["connections"] == 3
    assert node["by_transport"] == {"ws": 2, "sse": 1}
    assert node["users"] == 2
    assert node["channels"] == 2
    assert body["totals"]["connections"] >= 3
    stream.close()
    await first.close()
    await second.close()


async def test_stats_are_for_admins(client: Any, alice: Account) -> None:
    assert (await client.get("/realtime/stats", headers=alice.headers)).status == 403
    assert (await client.get("/realtime/stats")).status == 401
