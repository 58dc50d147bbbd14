"""User and admin notifications through the outbox, RabbitMQ and the real worker: stored
(GET /users/me/notifications, mark read) and pushed live over WebSocket and SSE."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from tests.integration.test_messaging_support import (
    accepted,
    marker,
    notifications_of,
    rows,
    wait_processed,
)
from tests.integration.test_realtime_sse import read_events
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.waiting import eventually

pytestmark = pytest.mark.usefixtures("clean_tables")


async def subscribed(client: Any, account: Account, *channels: str) -> Any:
    ws = await connect(client, account)
    for channel in channels:
        await ws.send_json({"type": "subscribe", "channel": channel})
        answer = await next_of(ws, "subscribed")
        assert answer["channel"] == channel
    return ws


async def publication_on(ws: Any, channel: str, timeout: float = 15) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = await next_of(ws, "publication", timeout=timeout)
            if frame["channel"] == channel:
                return frame


async def mine(client: Any, account: Account, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/users/me/notifications{query}", headers=account.headers)
    assert response.status == 200, await response.text()
    page: dict[str, Any] = await response.json()
    return page


async def test_a_user_notification_is_stored_and_pushed_over_websocket(
    client: Any, admin: Account, alice: Account, worker: Any
) -> None:
    ws = await subscribed(client, alice, f"user:{alice.id}")
    text = marker()
    body = {
        "user_id": alice.id,
        "message": text,
        "notification_type": "success",
        "data": {"order": [1, 2], "ok": True},
    }
    message_id = await accepted(client, "user_notification", body, account=admin)

    frame = await publication_on(ws, f"user:{alice.id}")
    event = frame["data"]
    assert event["kind"] == "notification"
    assert event["message_id"] == str(message_id)
    assert (event["title"], event["body"], event["level"]) == (text, text, "success")
    assert event["data"] == {"order": [1, 2], "ok": True}
    assert frame["from"] is None  # sent by the server, not a client

    [item] = [n for n in (await mine(client, alice))["items"] if n["body"] == text]
    assert item["id"] == event["id"]
    assert item["level"] == "success"
    assert item["data"] == {"order": [1, 2], "ok": True}
    assert item["read_at"] is None
    await ws.close()


async def test_a_user_notification_reaches_an_sse_stream(
    client: Any, admin: Account, alice: Account, worker: Any
) -> None:
    channel = f"user:{alice.id}"
    stream = await client.get(f"/realtime/events?channels={channel}", headers=alice.headers)
    assert stream.status == 200
    [hello] = await read_events(stream, 1)
    assert hello["event"] == "connected"
    text = marker()
    message_id = await accepted(
        client, "user_notification", {"user_id": alice.id, "message": text}, account=admin
    )
    [event] = await read_events(stream, 1, timeout=15)
    assert event["event"] == "publication"
    publication = orjson.loads(event["data"])
    assert publication["channel"] == channel
    assert publication["data"]["kind"] == "notification"
    assert publication["data"]["body"] == text
    assert publication["data"]["message_id"] == str(message_id)
    stream.close()


async def test_listing_pages_unread_filter_and_marking_read(
    client: Any, admin: Account, alice: Account, bob: Account, worker: Any, db: Any
) -> None:
    texts = [marker(f"n{n}") for n in range(3)]
    for text in texts:  # one at a time: the worker runs concurrent messages in any order
        body = {"user_id": alice.id, "message": text}
        await wait_processed(db, await accepted(client, "user_notification", body, account=admin))

    first = await mine(client, alice, "?page=1&per_page=2")
    assert (first["total"], first["page"], first["per_page"]) == (3, 1, 2)
    assert [n["body"] for n in first["items"]] == [texts[2], texts[1]]  # newest first
    second = await mine(client, alice, "?page=2&per_page=2")
    assert [n["body"] for n in second["items"]] == [texts[0]]
    assert (await mine(client, bob))["total"] == 0

    target = first["items"][1]
    response = await client.post(
        f"/users/me/notifications/{target['id']}/read", headers=alice.headers
    )
    assert response.status == 200
    read = await response.json()
    assert read["id"] == target["id"]
    assert read["read_at"] is not None
    again = await client.post(f"/users/me/notifications/{target['id']}/read", headers=alice.headers)
    assert (await again.json())["read_at"] == read["read_at"]  # reading twice keeps the time

    unread = await mine(client, alice, "?unread=true")
    assert unread["total"] == 2
    assert target["id"] not in [n["id"] for n in unread["items"]]
    assert (await mine(client, alice))["total"] == 3

    for who, path_id, status in (
        (bob, target["id"], 404),  # another user's notification
        (alice, 2**62, 404),
        (alice, 0, 422),
    ):
        response = await client.post(f"/users/me/notifications/{path_id}/read", headers=who.headers)
        assert response.status == status
    for query in ("?per_page=0", "?page=0", "?per_page=101", "?unread=maybe", "?sort=id"):
        response = await client.get(f"/users/me/notifications{query}", headers=alice.headers)
        assert response.status == 422, query
    assert (await client.get("/users/me/notifications")).status == 401


async def test_an_admin_notification_reaches_every_admin_and_no_plain_user(
    client: Any, admin: Account, superuser: Account, alice: Account, worker: Any, db: Any
) -> None:
    admin_ws = await subscribed(client, admin, f"user:{admin.id}", "admin:notifications")
    super_ws = await subscribed(client, superuser, f"user:{superuser.id}")
    alice_ws = await subscribed(client, alice, f"user:{alice.id}")
    text = marker()
    body = {"message": text, "severity": "critical"}
    message_id = await accepted(client, "admin_notification", body, account=admin)

    personal = (await publication_on(admin_ws, f"user:{admin.id}"))["data"]
    broadcast = (await publication_on(admin_ws, "admin:notifications"))["data"]
    assert personal["kind"] == broadcast["kind"] == "notification"
    assert personal["body"] == broadcast["body"] == text
    assert personal["level"] == "error"  # critical is stored as the error level
    assert broadcast["severity"] == "critical"
    assert (await publication_on(super_ws, f"user:{superuser.id}"))["data"]["body"] == text

    stored = await notifications_of(db, message_id)
    owners = {row["user_id"] for row in stored}
    assert {admin.id, superuser.id} <= owners
    assert alice.id not in owners
    roles = await _roles(db, owners)
    assert roles <= {"admin", "superuser"}
    assert any(n["body"] == text for n in (await mine(client, admin))["items"])
    assert not any(n["body"] == text for n in (await mine(client, alice))["items"])
    with pytest.raises(TimeoutError):
        await next_of(alice_ws, "publication", timeout=1)
    for ws in (admin_ws, super_ws, alice_ws):
        await ws.close()


async def _roles(db: Any, user_ids: set[int]) -> set[str]:
    found = await rows(db, "SELECT role FROM users WHERE id = ANY(%(ids)s)", ids=list(user_ids))
    return {row["role"] for row in found}


async def test_a_plain_user_cannot_listen_on_admin_channels(client: Any, alice: Account) -> None:
    ws = await connect(client, alice)
    for channel in ("admin:notifications", "system", "user:1"):
        await ws.send_json({"type": "subscribe", "channel": channel})
        error = await next_of(ws, "error")
        assert error["code"] == "forbidden", channel
    await ws.close()


async def test_a_notification_for_a_user_keeps_to_that_user(
    client: Any, admin: Account, alice: Account, bob: Account, worker: Any
) -> None:
    bob_ws = await subscribed(client, bob, f"user:{bob.id}")
    text = marker()
    await accepted(
        client, "user_notification", {"user_id": alice.id, "message": text}, account=admin
    )

    async def delivered() -> bool:
        return any(n["body"] == text for n in (await mine(client, alice))["items"])

    await eventually(delivered, timeout=15)
    with pytest.raises(TimeoutError):
        await next_of(bob_ws, "publication", timeout=0.5)
    assert not any(n["body"] == text for n in (await mine(client, bob))["items"])
    await bob_ws.close()


async def test_an_admin_notification_with_data_is_stored(
    client: Any, admin: Account, worker: Any, db: Any
) -> None:
    body = {"message": marker(), "data": {"disk": "95%", "hosts": ["a", "b"]}}
    message_id = await accepted(client, "admin_notification", body, account=admin)
    await wait_processed(db, message_id, timeout=8)
    stored = await notifications_of(db, message_id)
    assert admin.id in {row["user_id"] for row in stored}
    assert all(row["data"] == {"disk": "95%", "hosts": ["a", "b"]} for row in stored)
