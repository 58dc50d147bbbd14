"""Group commit on the real PostgreSQL: a batch of accepted messages and a batch of stored
notifications are one statement each, and neither loses, doubles nor mixes up a message,
whatever the batch holds (repeated idempotency keys, a message twice, a sender deleted
meanwhile, a message processed before)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from server.kernel.errors import IntegrityViolation
from storage import messages, notifications
from storage.db import connect, transaction
from tests.integration.test_messaging_support import count_by, marker, send, wait_processed
from tests.support.accounts import Account
from workers.broker.payloads import UserNotification
from workers.broker.topology import Topology
from workers.messaging.acceptor import Acceptor, prepare

pytestmark = pytest.mark.usefixtures("clean_tables")


class Rollback(Exception):
    pass


def _new(
    settings: Any, user_id: int, sender: int | None, key: str | None = None, text: str = "x"
) -> messages.NewMessage:
    payload = UserNotification(user_id=user_id, message=text)
    return prepare(
        Topology.from_settings(settings),
        "user_notification",
        payload,
        created_by=sender,
        idempotency_key=key,
    )


async def test_a_batch_writes_each_message_and_outbox_row_once(
    settings: Any, db: Any, admin: Account, alice: Account
) -> None:
    key = marker("key")
    batch = [
        _new(settings, alice.id, admin.id, text="a"),
        _new(settings, alice.id, admin.id, key=key, text="b"),
        _new(settings, alice.id, admin.id, key=key, text="b"),  # same key, same batch
        _new(settings, alice.id, None, text="c"),
    ]
    seen: list[tuple[bool, int, int]] = []  # created, message rows, outbox rows
    with contextlib.suppress(Rollback):  # looked at before any relay can publish them
        async with transaction(db) as conn:
            created = await messages.accept_many(conn, batch)
            for new, was_created in zip(batch, created, strict=True):
                counts = [
                    await conn.fetch_value(
                        f"SELECT count(*) FROM {table} WHERE {column} = %(v)s",
                        {"v": str(new.id)},
                    )
                    for table, column in (("messages", "id"), ("outbox", "message_id"))
                ]
                seen.append((was_created, *counts))
            raise Rollback
    assert seen == [(True, 1, 1), (True, 1, 1), (False, 0, 0), (True, 1, 1)]


async def test_a_sender_deleted_meanwhile_fails_only_its_own_message(
    settings: Any, db: Any, alice: Account
) -> None:
    acceptor = Acceptor(db, Topology.from_settings(settings))
    gone = 2**62  # no such user: the foreign key refuses the row
    with pytest.raises(IntegrityViolation):
        async with connect(db) as conn:
            await messages.accept_many(conn, [_new(settings, alice.id, gone)])
    payload = UserNotification(user_id=alice.id, message="y")
    results = await asyncio.gather(
        acceptor.accept("user_notification", payload, created_by=alice.id),
        acceptor.accept("user_notification", payload, created_by=gone),
        acceptor.accept("user_notification", payload, created_by=None),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityViolation)
    for result in (results[0], results[2]):
        assert not isinstance(result, BaseException)
        # stored with its outbox row (the app's relay may have published and removed it)
        assert await count_by(db, "messages", "id", result.message_id) == 1


async def test_a_stored_batch_skips_repeats_within_it_and_from_before(
    db: Any, alice: Account, bob: Account
) -> None:
    first, second, earlier = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def item(message_id: uuid.UUID, user: Account, text: str) -> notifications.FromMessage:
        return notifications.FromMessage(message_id, user.id, text, text, "info", "null")

    async with connect(db) as conn:
        assert await notifications.create_once_many(conn, "q", [item(earlier, bob, "e")])
        rows = await notifications.create_once_many(
            conn,
            "q",
            [
                item(first, alice, "f"),
                item(earlier, bob, "e again"),  # processed before: no second notification
                item(second, bob, "s"),
                item(first, alice, "f"),  # twice in this batch: the second is the repeat
            ],
        )
    assert rows[1] is None and rows[3] is None
    stored = [row for row in rows if row is not None]
    assert [(row["user_id"], row["body"]) for row in stored] == [(alice.id, "f"), (bob.id, "s")]
    assert [str(row["message_id"]) for row in stored] == [str(first), str(second)]
    for message_id in (first, second, earlier):
        assert await count_by(db, "processed_messages", "message_id", message_id) == 1
        assert await count_by(db, "notifications", "message_id", message_id) == 1


async def test_a_burst_of_notifications_reaches_each_user_exactly_once(
    client: Any, admin: Account, alice: Account, bob: Account, worker: Any, db: Any
) -> None:
    """Through the server's acceptor, the relay and the worker's batched store."""
    texts = {marker(): target for target in (alice, bob) for _ in range(20)}
    responses = await asyncio.gather(
        *(
            send(client, "user_notification", {"user_id": user.id, "message": text}, account=admin)
            for text, user in texts.items()
        )
    )
    assert {response.status for response in responses} == {202}
    ids = [uuid.UUID((await response.json())["message_id"]) for response in responses]
    assert len(set(ids)) == len(texts)
    await wait_processed(db, *ids)
    for text in texts:
        assert await count_by(db, "notifications", "body", text) == 1
    for user in (alice, bob):
        assert await count_by(db, "notifications", "user_id", user.id) == 20
