"""POST /messaging/*: who may send, what is refused with 422, and Idempotency-Key."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.integration.test_api_keys import as_key, create_key
from tests.integration.test_http_errors import assert_envelope
from tests.integration.test_messaging_support import (
    PATHS,
    count,
    count_by,
    marker,
    rows,
    send,
    valid_body,
    wait_processed,
)
from tests.support.accounts import Account

pytestmark = pytest.mark.usefixtures("clean_tables")

KINDS = list(PATHS)


@pytest.mark.parametrize("kind", KINDS)
async def test_admins_and_superusers_are_accepted_with_a_message_id(
    client: Any, admin: Account, superuser: Account, alice: Account, db: Any, kind: str
) -> None:
    for sender in (admin, superuser):
        response = await send(client, kind, valid_body(kind, alice.id), account=sender)
        assert response.status == 202, await response.text()
        answer = await response.json()
        assert set(answer) == {"message_id", "duplicate"}
        assert answer["duplicate"] is False
        [row] = await _message_rows(db, answer["message_id"])
        assert row["kind"] == kind
        assert row["created_by"] == sender.id
        assert row["status"] in ("accepted", "processed")


async def count_messages_mentioning(db: Any, text: str) -> int:
    return await count(
        db, "SELECT count(*) FROM messages WHERE payload::text LIKE %(t)s", t=f"%{text}%"
    )


async def _message_rows(db: Any, message_id: str) -> list[dict[str, Any]]:
    return await rows(db, "SELECT * FROM messages WHERE id = %(id)s", id=message_id)


@pytest.mark.parametrize("kind", KINDS)
async def test_plain_users_are_403_and_strangers_401(
    client: Any, alice: Account, db: Any, kind: str
) -> None:
    text = marker()
    body = valid_body(kind, alice.id, text)
    response = await send(client, kind, body, account=alice)
    assert response.status == 403
    assert_envelope(await response.json(), "insufficient_role")
    response = await send(client, kind, body)
    assert response.status == 401
    assert_envelope(await response.json(), "unauthorized")
    assert await count_messages_mentioning(db, text) == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_an_api_key_needs_the_messaging_scope_and_an_admin_owner(
    client: Any, admin: Account, alice: Account, kind: str
) -> None:
    with_scope = (await create_key(client, admin, scopes=["messaging"]))["key"]
    without = (await create_key(client, admin, scopes=["read", "write"]))["key"]
    plain = (await create_key(client, alice, scopes=["messaging"]))["key"]
    body = valid_body(kind, alice.id)
    response = await send(client, kind, body, headers=as_key(with_scope))
    assert response.status == 202, await response.text()
    response = await send(client, kind, body, headers=as_key(without))
    assert response.status == 403
    assert_envelope(await response.json(), "insufficient_scope")
    response = await send(client, kind, body, headers=as_key(plain))
    assert response.status == 403
    assert_envelope(await response.json(), "insufficient_role")


async def test_an_api_key_with_messaging_alone_cannot_read_notifications(
    client: Any, alice: Account
) -> None:
    key = (await create_key(client, alice, scopes=["messaging"]))["key"]
    response = await client.get("/users/me/notifications", headers=as_key(key))
    assert response.status == 403


INVALID = [
    ("user_notification", [1, 2], None),
    ("user_notification", "just a string", None),
    ("user_notification", 42, None),
    ("user_notification", {}, "user_id"),
    ("user_notification", {"user_id": "abc", "message": "x"}, "user_id"),
    ("user_notification", {"user_id": 0, "message": "x"}, "user_id"),
    ("user_notification", {"user_id": 1, "message": ""}, "message"),
    ("user_notification", {"user_id": 1, "message": "x" * 5001}, "message"),
    ("user_notification", {"user_id": 1, "message": 5}, "message"),
    (
        "user_notification",
        {"user_id": 1, "message": "x", "notification_type": "boom"},
        "notification_type",
    ),
    ("user_notification", {"user_id": 1, "message": "x", "extra": 1}, "extra"),
    ("admin_notification", {"message": "x", "severity": "fatal"}, "severity"),
    ("admin_notification", {"message": "x" * 5001}, "message"),
    ("admin_notification", {"message": "x", "user_id": 1}, "user_id"),
    ("order_processing", {"order_id": 1, "user_id": 1, "action": "created", "total": -1}, "total"),
    (
        "order_processing",
        {"order_id": 1, "user_id": 1, "action": "created", "total": "abc"},
        "total",
    ),
    (
        "order_processing",
        {"order_id": 1, "user_id": 1, "action": "created", "total": 1.234},
        "total",
    ),
    ("order_processing", {"order_id": -5, "user_id": 1, "action": "created"}, "order_id"),
    ("order_processing", {"order_id": 1, "user_id": 1, "action": "x" * 51}, "action"),
    (
        "order_processing",
        {"order_id": 1, "user_id": 1, "action": "created", "items": "many"},
        "items",
    ),
    (
        "order_processing",
        {"order_id": 1, "user_id": 1, "action": "created", "items": [{"price": -1}]},
        "items",
    ),
    (
        "order_processing",
        {"order_id": 1, "user_id": 1, "action": "created", "items": [{"quantity": 0}]},
        "items",
    ),
    (
        "order_processing",
        {"order_id": 1, "user_id": 1, "action": "created", "items": [{"sku": "s" * 101}]},
        "items",
    ),
    ("order_processing", {"order_id": 1, "user_id": 1}, "action"),
    ("system_event", {"event_name": ""}, "event_name"),
    ("system_event", {"event_name": "e" * 201}, "event_name"),
    ("system_event", {"event_name": "e", "severity": "loud"}, "severity"),
    ("system_event", {"event_name": "e", "when": "now"}, "when"),
]


@pytest.mark.parametrize(("kind", "body", "field"), INVALID)
async def test_invalid_bodies_are_422_with_details(
    client: Any, admin: Account, kind: str, body: Any, field: str | None
) -> None:
    response = await send(client, kind, body, account=admin)
    assert response.status == 422, await response.text()
    error = assert_envelope(await response.json(), "validation_error")
    assert error["details"]
    if field:
        assert any(field in detail["loc"] for detail in error["details"]), error["details"]


@pytest.mark.parametrize("raw", [b"not json", b"{", b""])
async def test_bodies_that_are_not_json_are_400(client: Any, admin: Account, raw: bytes) -> None:
    response = await client.post(
        PATHS["user_notification"],
        data=raw,
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert_envelope(await response.json(), "malformed_json")


async def test_a_message_over_the_workers_size_limit_is_refused_up_front(
    client: Any, admin: Account, alice: Account
) -> None:
    body = {"user_id": alice.id, "message": "big", "data": "x" * 300_000}
    response = await send(client, "user_notification", body, account=admin)
    assert response.status in (413, 422), await response.text()


async def test_the_same_key_and_body_returns_the_first_message(
    client: Any, admin: Account, alice: Account, worker: Any, db: Any
) -> None:
    text, key = marker(), marker("key")
    body = {"user_id": alice.id, "message": text}
    first = await (await send(client, "user_notification", body, account=admin, key=key)).json()
    message_id = uuid.UUID(first["message_id"])
    await wait_processed(db, message_id)
    for _ in range(2):
        response = await send(client, "user_notification", body, account=admin, key=key)
        assert response.status == 202
        assert await response.json() == {"message_id": first["message_id"], "duplicate": True}
    await asyncio.sleep(1)  # a second message, had one been made, would be processed by now
    assert await count_messages_mentioning(db, text) == 1
    assert await count_by(db, "messages", "idempotency_key", key) == 1
    assert await count_by(db, "outbox", "message_id", message_id) == 0
    assert await count_by(db, "processed_messages", "message_id", message_id) == 1
    assert await count_by(db, "notifications", "body", text) == 1


async def test_concurrent_repeats_of_one_key_make_one_message(
    client: Any, admin: Account, alice: Account, db: Any
) -> None:
    key, body = marker("key"), {"user_id": alice.id, "message": marker()}
    responses = await asyncio.gather(
        *(send(client, "user_notification", body, account=admin, key=key) for _ in range(8))
    )
    answers = [await r.json() for r in responses]
    assert {r.status for r in responses} == {202}
    assert len({a["message_id"] for a in answers}) == 1
    assert sorted(a["duplicate"] for a in answers) == [False] + [True] * 7
    assert await count_by(db, "messages", "idempotency_key", key) == 1


async def test_the_same_key_with_another_body_or_kind_is_409(
    client: Any, admin: Account, alice: Account, db: Any
) -> None:
    key = marker("key")
    body = {"user_id": alice.id, "message": marker()}
    assert (await send(client, "user_notification", body, account=admin, key=key)).status == 202
    changed = {**body, "message": marker()}
    for kind, other in (("user_notification", changed), ("admin_notification", {"message": "x"})):
        response = await send(client, kind, other, account=admin, key=key)
        assert response.status == 409
        assert_envelope(await response.json(), "idempotency_conflict")
    assert await count_by(db, "messages", "idempotency_key", key) == 1


async def test_keys_are_per_caller(
    client: Any, admin: Account, superuser: Account, alice: Account
) -> None:
    key, body = marker("key"), {"user_id": alice.id, "message": marker()}
    ids = set()
    for sender in (admin, superuser):
        response = await send(client, "user_notification", body, account=sender, key=key)
        answer = await response.json()
        assert answer["duplicate"] is False
        ids.add(answer["message_id"])
    assert len(ids) == 2


@pytest.mark.parametrize("key", ["k" * 500, "k" * 201, ""])
async def test_bad_idempotency_keys_are_400(
    client: Any, admin: Account, alice: Account, key: str
) -> None:
    body = {"user_id": alice.id, "message": "x"}
    response = await send(client, "user_notification", body, account=admin, key=key)
    assert response.status == 400
    assert_envelope(await response.json(), "bad_idempotency_key")


async def test_a_200_character_key_is_fine(client: Any, admin: Account, alice: Account) -> None:
    body = {"user_id": alice.id, "message": "x"}
    response = await send(client, "user_notification", body, account=admin, key="k" * 200)
    assert response.status == 202
