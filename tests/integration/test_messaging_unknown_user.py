"""A message for a user who does not exist is refused where it is accepted (HTTP, the batch
route, MessageClient), in the statement that would store it: 404 `unknown_user` (as for
POST /realtime/notifications/send) and nothing stored, instead of a message the worker can
only fail on. (A user deleted after acceptance is the worker's permanent error:
test_messaging_permanent_errors.py `unknown-user`, test_messaging_jobs.py for orders.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_http_errors import assert_envelope
from tests.integration.test_messaging_support import count, send, valid_body
from tests.support.accounts import Account
from workers.client import MessageClient
from workers.messaging.acceptor import UnknownUser

pytestmark = pytest.mark.usefixtures("clean_tables")

NO_SUCH_USER = 2**62 + 777


async def _stored(db: Any, user_id: int = NO_SUCH_USER) -> tuple[int, int]:
    """Messages and outbox rows for this user."""
    return (
        await count(
            db, "SELECT count(*) FROM messages WHERE payload->>'user_id' = %(u)s", u=str(user_id)
        ),
        await count(
            db, "SELECT count(*) FROM outbox WHERE body LIKE %(u)s", u=f'%"user_id":{user_id}%'
        ),
    )


@pytest.mark.parametrize("kind", ["user_notification", "order_processing"])
async def test_a_message_for_an_unknown_user_is_404_and_nothing_is_stored(
    client: Any, admin: Account, db: Any, kind: str
) -> None:
    response = await send(client, kind, valid_body(kind, NO_SUCH_USER), account=admin)
    assert response.status == 404, await response.text()
    error = assert_envelope(await response.json(), "unknown_user")
    assert error["message"] == f"user {NO_SUCH_USER} does not exist"
    assert error["details"][0]["loc"] == ["user_id"]
    assert await _stored(db) == (0, 0)


async def test_the_same_request_for_an_existing_user_is_accepted(
    client: Any, admin: Account, alice: Account, db: Any
) -> None:
    response = await send(
        client, "user_notification", valid_body("user_notification", alice.id), account=admin
    )
    assert response.status == 202, await response.text()
    assert (await _stored(db, alice.id))[0] == 1


async def test_a_retried_key_for_an_unknown_user_is_refused_again(
    client: Any, admin: Account, db: Any
) -> None:
    body = valid_body("user_notification", NO_SUCH_USER)
    for _ in range(2):
        response = await send(client, "user_notification", body, account=admin, key="k-1")
        assert response.status == 404
    assert await _stored(db) == (0, 0)


async def test_a_retry_after_its_user_was_deleted_gets_the_first_message_id(
    client: Any, admin: Account, bob: Account, db: Any
) -> None:
    """The key wins over the user check: the request was accepted, so its retry is too."""
    body = valid_body("user_notification", bob.id)
    first = await send(client, "user_notification", body, account=admin, key="k-deleted")
    assert first.status == 202, await first.text()
    deleted = await client.delete(f"/users/{bob.id}", headers=admin.headers)
    assert deleted.status == 204, await deleted.text()
    again = await send(client, "user_notification", body, account=admin, key="k-deleted")
    assert again.status == 202, await again.text()
    answer = await again.json()
    assert answer == {"message_id": (await first.json())["message_id"], "duplicate": True}
    assert (await _stored(db, bob.id))[0] == 1


async def test_a_key_reused_for_an_unknown_user_is_409_not_404(
    client: Any, admin: Account, alice: Account, db: Any
) -> None:
    body = valid_body("user_notification", alice.id)
    first = await send(client, "user_notification", body, account=admin, key="k-reused")
    assert first.status == 202, await first.text()
    other = valid_body("user_notification", NO_SUCH_USER)
    response = await send(client, "user_notification", other, account=admin, key="k-reused")
    assert response.status == 409, await response.text()
    assert_envelope(await response.json(), "idempotency_conflict")
    assert await _stored(db) == (0, 0)


async def test_a_batch_item_reusing_an_earlier_items_key_for_an_unknown_user_is_409(
    client: Any, admin: Account, alice: Account, db: Any
) -> None:
    messages = [
        {
            "kind": "user_notification",
            "payload": valid_body("user_notification", user_id),
            "idempotency_key": "k-batch",
        }
        for user_id in (alice.id, NO_SUCH_USER)
    ]
    response = await client.post(
        "/messaging/batch", json={"messages": messages}, headers=admin.headers
    )
    assert response.status == 202, await response.text()
    first, second = (await response.json())["results"]
    assert first["message_id"]
    assert second["error"]["code"] == "idempotency_conflict", second
    assert await _stored(db) == (0, 0)


async def test_a_notification_to_an_unknown_user_is_404(client: Any, admin: Account) -> None:
    body = {"user_id": 2**62, "title": "hello"}
    response = await client.post("/realtime/notifications/send", json=body, headers=admin.headers)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "unknown_user"


async def test_a_batch_names_the_item_for_an_unknown_user_and_stores_the_others(
    client: Any, admin: Account, alice: Account, db: Any
) -> None:
    messages = [
        {"kind": "user_notification", "payload": valid_body("user_notification", alice.id)},
        {"kind": "user_notification", "payload": valid_body("user_notification", NO_SUCH_USER)},
        {"kind": "order_processing", "payload": valid_body("order_processing", NO_SUCH_USER)},
        {"kind": "system_event", "payload": valid_body("system_event", alice.id)},
    ]
    response = await client.post(
        "/messaging/batch", json={"messages": messages}, headers=admin.headers
    )
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert (answer["accepted"], answer["failed"]) == (2, 2)
    results = answer["results"]
    for index in (1, 2):
        assert results[index]["message_id"] is None
        assert results[index]["error"] == {
            "code": "unknown_user",
            "message": f"user {NO_SUCH_USER} does not exist",
        }
    assert results[0]["message_id"] and results[3]["message_id"]
    assert (await _stored(db, alice.id))[0] == 1
    assert await _stored(db) == (0, 0)


async def test_message_client_raises_unknown_user_and_stores_nothing(
    settings: Any, db: Any, alice: Account
) -> None:
    client = MessageClient(settings)
    async with client.session():
        with pytest.raises(UnknownUser, match=f"user {NO_SUCH_USER} does not exist"):
            await client.send_user_notification(user_id=NO_SUCH_USER, message="hello")
        assert await _stored(db) == (0, 0)
        await client.send_user_notification(user_id=alice.id, message="hello")
    assert (await _stored(db, alice.id))[0] == 1
