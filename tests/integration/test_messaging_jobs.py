"""Orders and system events through the real worker, exactly-once delivery of a message
published twice, and the Python API (MessageClient)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from storage.db import transaction
from tests.integration.test_messaging_notifications import publication_on, subscribed
from tests.integration.test_messaging_support import (
    accepted,
    count_by,
    marker,
    new_order_id,
    notifications_of,
    publish_raw,
    rows,
    user_notification_body,
    wait_dead,
    wait_processed,
)
from tests.integration.test_realtime_ws import connect, next_of
from tests.support.accounts import Account
from tests.support.waiting import eventually
from workers.broker.payloads import OrderProcessing
from workers.broker.topology import Topology
from workers.client import MessageClient, get_message_client
from workers.messaging.acceptor import accept

pytestmark = pytest.mark.usefixtures("clean_tables")


async def order_row(db: Any, order_id: int) -> dict[str, Any] | None:
    found = await rows(db, "SELECT * FROM orders WHERE id = %(id)s", id=order_id)
    return found[0] if found else None


async def order_updates(ws: Any, channel: str, order_id: int) -> list[dict[str, Any]]:
    """The order's pushes until it reaches a final status."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["status"] not in ("completed", "failed"):
        data = (await publication_on(ws, channel))["data"]
        if data.get("kind") == "order" and data["order_id"] == order_id:
            seen.append(data)
    return seen


async def run_order(
    client: Any, admin: Account, owner: Account, db: Any, **fields: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    channel = f"user:{owner.id}"
    ws = await subscribed(client, owner, channel)
    order_id = new_order_id()
    body = {"order_id": order_id, "user_id": owner.id, **fields}
    message_id = await accepted(client, "order_processing", body, account=admin)
    updates = await order_updates(ws, channel, order_id)
    await ws.close()
    await wait_processed(db, message_id)
    row = await order_row(db, order_id)
    assert row is not None
    return updates, row


async def test_a_created_order_goes_received_processing_completed(
    client: Any, admin: Account, alice: Account, worker: Any, db: Any
) -> None:
    items = [{"sku": "A-1", "quantity": 2, "price": "10.00"}, {"quantity": 1, "price": 5.5}]
    updates, row = await run_order(
        client, admin, alice, db, action="created", items=items, total=25.5
    )
    assert [u["status"] for u in updates] == ["received", "processing", "completed"]
    assert updates[-1]["result"] == {"items": 3, "total": "25.50"}
    assert updates[-1]["error"] is None
    assert row["status"] == "completed"
    assert row["user_id"] == alice.id
    assert row["result"] == {"items": 3, "total": "25.50"}
    assert [step["status"] for step in row["history"]] == ["received", "processing", "completed"]
    assert row["items"][0]["sku"] == "A-1"


async def test_items_that_do_not_add_up_fail_the_order(
    client: Any, admin: Account, alice: Account, worker: Any, db: Any
) -> None:
    items = [{"quantity": 3, "price": "1.10"}]
    updates, row = await run_order(client, admin, alice, db, action="created", items=items, total=4)
    assert [u["status"] for u in updates] == ["received", "processing", "failed"]
    assert row["status"] == "failed"
    assert "3.30" in row["error"] and "4" in row["error"]
    assert row["result"] == {"items": 3, "total": "3.30"}


@pytest.mark.parametrize(("action", "error"), [("cancelled", "cancelled"), ("shipped", "unknown")])
async def test_cancelled_and_unknown_actions_end_failed(
    client: Any, admin: Account, alice: Account, worker: Any, db: Any, action: str, error: str
) -> None:
    updates, row = await run_order(client, admin, alice, db, action=action)
    assert [u["status"] for u in updates] == ["received", "failed"]
    assert row["status"] == "failed"
    assert error in row["error"]


async def test_a_repeated_order_does_not_move_it_again(
    client: Any, admin: Account, alice: Account, worker: Any, db: Any
) -> None:
    _, row = await run_order(client, admin, alice, db, action="created")
    again = {"order_id": row["id"], "user_id": alice.id, "action": "cancelled"}
    await wait_processed(db, await accepted(client, "order_processing", again, account=admin))
    after = await order_row(db, row["id"])
    assert after is not None
    assert (after["status"], after["history"]) == ("completed", row["history"])


async def test_an_order_for_a_user_deleted_after_acceptance_is_dead_lettered(
    client: Any, admin: Account, bob: Account, worker: Any, settings: Any, db: Any
) -> None:
    """(An order for a user who does not exist is refused when accepted:
    test_messaging_unknown_user.py.) Bob is deleted in the transaction that accepts it."""
    order_id, user_id = new_order_id(), bob.id
    payload = OrderProcessing(order_id=order_id, user_id=user_id, action="created")
    async with transaction(db) as conn:
        message_id = (
            await accept(
                conn,
                Topology.from_settings(settings),
                "order_processing",
                payload,
                created_by=admin.id,
            )
        ).message_id
        await conn.execute("DELETE FROM users WHERE id = %(id)s", {"id": user_id})
    dead = await wait_dead(settings, message_id, "orders")
    assert dead["headers"]["x-attempts"] == 1
    assert f"user {user_id} does not exist" in dead["headers"]["x-error"]
    assert await order_row(db, order_id) is None
    [message] = await rows(db, "SELECT * FROM messages WHERE id = %(id)s", id=str(message_id))
    assert message["status"] == "dead"
    assert "does not exist" in message["last_error"]


async def test_an_order_id_of_another_user_is_dead_lettered(
    client: Any, admin: Account, alice: Account, bob: Account, worker: Any, settings: Any, db: Any
) -> None:
    _, row = await run_order(client, admin, alice, db, action="created")
    body = {"order_id": row["id"], "user_id": bob.id, "action": "cancelled"}
    message_id = await accepted(client, "order_processing", body, account=admin)
    dead = await wait_dead(settings, message_id, "orders")
    assert "belongs to another user" in dead["headers"]["x-error"]
    after = await order_row(db, row["id"])
    assert after is not None
    assert (after["user_id"], after["status"]) == (alice.id, "completed")


async def test_a_system_event_is_stored_and_published_to_admins(
    client: Any, admin: Account, alice: Account, worker: Any, db: Any
) -> None:
    admin_ws = await subscribed(client, admin, "system")
    alice_ws = await connect(client, alice)
    await alice_ws.send_json({"type": "subscribe", "channel": "system"})
    assert (await next_of(alice_ws, "error"))["code"] == "forbidden"
    name = marker("deploy")
    body = {"event_name": name, "event_data": {"version": "1.2"}, "severity": "warning"}
    message_id = await accepted(client, "system_event", body, account=admin)

    event = (await publication_on(admin_ws, "system"))["data"]
    assert event["kind"] == "system_event"
    assert (event["event_name"], event["event_data"], event["severity"]) == (
        name,
        {"version": "1.2"},
        "warning",
    )
    [row] = await rows(
        db, "SELECT * FROM system_events WHERE message_id = %(m)s", m=str(message_id)
    )
    assert (row["id"], row["event_name"], row["severity"]) == (event["id"], name, "warning")
    for ws in (admin_ws, alice_ws):
        await ws.close()


async def test_a_message_published_twice_is_processed_once(
    client: Any, alice: Account, worker: Any, settings: Any, db: Any
) -> None:
    message_id, text = uuid.uuid4(), marker()
    before = worker.processed
    for _ in range(2):
        await publish_raw(settings, user_notification_body(alice.id, text), str(message_id))

    async def both_handled() -> bool:
        await asyncio.sleep(0)
        return worker.processed >= before + 2

    await eventually(both_handled, timeout=15)
    assert len(await notifications_of(db, message_id)) == 1
    assert await count_by(db, "notifications", "body", text) == 1
    assert await count_by(db, "processed_messages", "message_id", message_id) == 1


async def test_the_python_client_sends_all_four_kinds(
    client: Any, alice: Account, admin: Account, worker: Any, db: Any, settings: Any
) -> None:
    message_client = MessageClient(settings)
    text, event, order_id = marker(), marker("event"), new_order_id()
    async with message_client.session():
        ids = [
            await message_client.send_user_notification(alice.id, text, "warning", data={"k": "v"}),
            await message_client.send_admin_notification(text, severity="info"),
            await message_client.send_order_processing(
                order_id, alice.id, "created", items=[{"quantity": 2, "price": "1.25"}], total=2.5
            ),
            await message_client.send_system_event(event, {"a": 1}, "info"),
        ]
    await wait_processed(db, *ids)
    [note] = await notifications_of(db, ids[0])
    assert (note["user_id"], note["body"], note["level"], note["data"]) == (
        alice.id,
        text,
        "warning",
        {"k": "v"},
    )
    assert admin.id in {row["user_id"] for row in await notifications_of(db, ids[1])}
    order = await order_row(db, order_id)
    assert order is not None
    assert (order["status"], order["result"]) == ("completed", {"items": 2, "total": "2.50"})
    assert await count_by(db, "system_events", "event_name", event) == 1
    sql = "SELECT kind, created_by FROM messages WHERE id = ANY(%(ids)s::uuid[])"
    sent = await rows(db, sql, ids=[str(i) for i in ids])
    assert sorted(r["kind"] for r in sent) == sorted(
        ["user_notification", "admin_notification", "order_processing", "system_event"]
    )
    assert {r["created_by"] for r in sent} == {None}


async def test_the_python_client_needs_a_session_and_valid_input(settings: Any) -> None:
    message_client = get_message_client(settings)
    assert isinstance(message_client, MessageClient)
    with pytest.raises(RuntimeError, match="session"):
        await message_client.send_user_notification(1, "x")
    async with message_client.session():
        with pytest.raises(ValueError, match="user_id"):
            await message_client.send_user_notification(0, "x")
        with pytest.raises(ValueError, match="total"):
            await message_client.send_order_processing(1, 1, "created", total=-1)


async def test_the_python_client_records_who_sent(
    client: Any, admin: Account, alice: Account, db: Any, settings: Any
) -> None:
    async with MessageClient(settings, created_by=admin.id).session() as message_client:
        message_id = await message_client.send_user_notification(alice.id, marker())
    [row] = await rows(db, "SELECT created_by FROM messages WHERE id = %(id)s", id=str(message_id))
    assert row["created_by"] == admin.id


async def test_the_python_client_honours_idempotency_keys(
    alice: Account, db: Any, settings: Any
) -> None:
    key, text = marker("key"), marker()
    async with MessageClient(settings).session() as message_client:
        first = await message_client.send_user_notification(alice.id, text, idempotency_key=key)
        second = await message_client.send_user_notification(alice.id, text, idempotency_key=key)
    assert await count_by(db, "messages", "idempotency_key", key) == 1
    assert first == second
