"""POST /messaging/batch: several messages in one request, one result each, in order; a
whole batch refused when any message is invalid; per-message idempotency and limits."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from handlers.messaging_batch import MAX_BATCH
from tests.integration.test_api_keys import as_key, create_key
from tests.integration.test_http_errors import assert_envelope
from tests.integration.test_messaging_support import (
    count,
    count_by,
    marker,
    new_order_id,
    valid_body,
    wait_processed,
)
from tests.support.accounts import Account
from workers.broker.kinds import MAX_MESSAGE_BYTES

pytestmark = pytest.mark.usefixtures("clean_tables")

PATH = "/messaging/batch"


def item(kind: str, payload: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    found = {"kind": kind, "payload": payload}
    if key is not None:
        found["idempotency_key"] = key
    return found


async def post(client: Any, headers: dict[str, str], messages: list[Any]) -> Any:
    return await client.post(PATH, json={"messages": messages}, headers=headers)


async def sent_by(db: Any, account: Account) -> int:
    return await count(db, "SELECT count(*) FROM messages WHERE created_by = %(id)s", id=account.id)


async def test_every_kind_in_one_batch_is_processed_once_each(
    client: Any, admin: Account, alice: Account, worker: Any, db: Any
) -> None:
    texts = [marker() for _ in range(3)]
    order_id = new_order_id()
    messages = [
        *(item("user_notification", {"user_id": alice.id, "message": t}) for t in texts),
        item("admin_notification", valid_body("admin_notification", alice.id)),
        item("order_processing", {"order_id": order_id, "user_id": alice.id, "action": "created"}),
        item("system_event", valid_body("system_event", alice.id)),
    ]
    response = await post(client, admin.headers, messages)
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert (answer["accepted"], answer["failed"]) == (6, 0)
    ids = [uuid.UUID(result["message_id"]) for result in answer["results"]]
    assert len(set(ids)) == 6
    assert not any(result["duplicate"] for result in answer["results"])
    await wait_processed(db, *ids)
    for text in texts:
        assert await count_by(db, "notifications", "body", text) == 1
    assert await count_by(db, "orders", "id", order_id) == 1
    kinds = await count(
        db,
        "SELECT count(DISTINCT kind) FROM messages WHERE id = ANY(%(ids)s::uuid[])",
        ids=[str(i) for i in ids],
    )
    assert kinds == 4


async def test_keys_repeat_within_and_across_batches_and_conflicts_fail_alone(
    client: Any, admin: Account, alice: Account, db: Any
) -> None:
    key, other = marker("key"), marker("key")
    same = {"user_id": alice.id, "message": marker()}
    first = await post(
        client,
        admin.headers,
        [
            item("user_notification", same, key),
            item("user_notification", same, key),  # a repeat inside the batch
            item("user_notification", {"user_id": alice.id, "message": "x"}, other),
        ],
    )
    results = (await first.json())["results"]
    assert results[0]["duplicate"] is False and results[1]["duplicate"] is True
    assert results[0]["message_id"] == results[1]["message_id"]
    second = await post(
        client,
        admin.headers,
        [
            item("user_notification", same, key),  # the same request again: its first id
            item("user_notification", {"user_id": alice.id, "message": "changed"}, other),
            item("user_notification", {"user_id": alice.id, "message": marker()}),
        ],
    )
    answer = await second.json()
    assert second.status == 202
    assert (answer["accepted"], answer["failed"]) == (2, 1)
    again, conflict, fresh = answer["results"]
    assert (again["message_id"], again["duplicate"]) == (results[0]["message_id"], True)
    assert conflict["error"]["code"] == "idempotency_conflict"
    assert conflict["message_id"] is None
    assert fresh["duplicate"] is False
    assert await sent_by(db, admin) == 3


async def test_a_message_too_big_for_the_worker_fails_alone(
    client: Any, admin: Account, alice: Account, db: Any
) -> None:
    big = {"user_id": alice.id, "message": "big", "data": "x" * (MAX_MESSAGE_BYTES + 10)}
    response = await post(
        client,
        admin.headers,
        [
            item("user_notification", {"user_id": alice.id, "message": "small"}),
            item("user_notification", big),
        ],
    )
    answer = await response.json()
    assert response.status == 202
    assert answer["results"][1]["error"]["code"] == "message_too_large"
    assert answer["results"][0]["message_id"] is not None
    assert await sent_by(db, admin) == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"messages": []}, ["messages"]),
        ({"messages": [{"kind": "launch_rockets", "payload": {}}]}, ["messages", "0"]),
        ({"messages": [{"payload": {}}]}, ["messages", "0"]),
        (
            {"messages": [{"kind": "user_notification", "payload": {"user_id": 1}}]},
            ["messages", "0", "user_notification", "payload", "message"],
        ),
        (
            {"messages": [{"kind": "system_event", "payload": {"event_name": "e"}, "x": 1}]},
            ["messages", "0", "system_event", "x"],
        ),
        (
            {
                "messages": [{"kind": "system_event", "payload": {"event_name": "e"}}] * 2
                + [{"kind": "system_event", "payload": {"event_name": "e"}, "idempotency_key": ""}]
            },
            ["messages", "2", "system_event", "idempotency_key"],
        ),
        ({"messages": {"kind": "system_event"}}, ["messages"]),
        ({"batch": []}, ["messages"]),
        ([1, 2], []),
    ],
    ids=[
        "empty",
        "unknown-kind",
        "no-kind",
        "bad-payload",
        "extra-field",
        "bad-key",
        "not-a-list",
        "wrong-field",
        "not-an-object",
    ],
)
async def test_one_invalid_message_refuses_the_whole_batch(
    client: Any, admin: Account, db: Any, body: Any, loc: list[str]
) -> None:
    response = await client.post(PATH, json=body, headers=admin.headers)
    assert response.status == 422, await response.text()
    error = assert_envelope(await response.json(), "validation_error")
    assert any(detail["loc"][: len(loc)] == loc for detail in error["details"]), error
    assert await sent_by(db, admin) == 0


async def test_more_than_the_limit_is_refused(client: Any, admin: Account, db: Any) -> None:
    one = item("system_event", {"event_name": "e"})
    response = await post(client, admin.headers, [one] * (MAX_BATCH + 1))
    assert response.status == 422
    assert_envelope(await response.json(), "validation_error")
    full = await post(client, admin.headers, [one] * MAX_BATCH)
    assert full.status == 202
    assert (await full.json())["accepted"] == MAX_BATCH
    assert await sent_by(db, admin) == MAX_BATCH


async def test_who_may_send_a_batch(client: Any, alice: Account, admin: Account, db: Any) -> None:
    messages = [item("system_event", {"event_name": "e"})]
    assert (await post(client, {}, messages)).status == 401
    assert (await post(client, alice.headers, messages)).status == 403
    plain = (await create_key(client, alice, scopes=["messaging"]))["key"]
    assert (await post(client, as_key(plain), messages)).status == 403
    with_scope = (await create_key(client, admin, scopes=["messaging"]))["key"]
    without = (await create_key(client, admin, scopes=["read", "write"]))["key"]
    assert (await post(client, as_key(without), messages)).status == 403
    response = await post(client, as_key(with_scope), messages)
    assert response.status == 202, await response.text()
    assert await sent_by(db, alice) == 0
    assert await sent_by(db, admin) == 1
