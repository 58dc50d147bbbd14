"""Retries with backoff, dead letters with their last error, poison messages, and the
`python -m workers dlq list|show|requeue|purge` command."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiormq
import pytest

from server.app import create_app
from server.kernel.principal import Role
from tests.conftest import make_settings
from tests.integration.test_messaging_support import (
    accepted,
    marker,
    notifications_of,
    publish_raw,
    rows,
    user_notification_body,
    wait_dead,
    wait_processed,
    workers_cli,
)
from tests.support.accounts import create_account, log_in
from tests.support.waiting import eventually
from workers import dlq
from workers.__main__ import main
from workers.broker.kinds import MAX_MESSAGE_BYTES
from workers.broker.topology import Topology
from workers.process import worker_running

pytestmark = pytest.mark.usefixtures("clean_tables")


@pytest.fixture
async def fast_retries(
    settings: Any, aiohttp_client: Any, db: Any, auth_service: Any
) -> AsyncIterator[tuple[Any, Any, Any, Any]]:
    """An app and a worker that retry after 0.2 s and 0.4 s and give up after 3 attempts,
    on their own exchanges and queues (removed afterwards); yields (settings, client, admin,
    worker)."""
    custom = make_settings(
        RETRY_DELAYS="0.2,0.4", WORKER_MAX_ATTEMPTS=3, AMQP_PREFIX=f"{settings.AMQP_PREFIX}-retry"
    )
    client = await aiohttp_client(create_app(custom))
    admin = await log_in(client, await create_account(db, auth_service, role=Role.admin))
    try:
        async with worker_running(custom) as worker:
            await worker.amqp.wait_connected(timeout=10)
            yield custom, client, admin, worker
    finally:
        connection = await aiormq.connect(custom.RABBITMQ_URL.get_secret_value())
        await Topology.from_settings(custom).delete(await connection.channel())
        await connection.close()


async def test_a_failing_job_is_retried_then_dead_lettered_then_requeued(
    fast_retries: tuple[Any, Any, Any, Any], db: Any
) -> None:
    custom, client, admin, worker = fast_retries
    # A failure a later attempt may not meet (a user that does not exist never appears by
    # itself: that one is dead-lettered at once, test_messaging_permanent_errors.py).
    job, outage = worker.jobs["user_notification"], {"down": True}

    async def flaky(ctx: Any, message: Any) -> None:
        if outage["down"]:
            raise RuntimeError("the downstream service is down")
        await job(ctx, message)

    worker.jobs["user_notification"] = flaky
    user_id = admin.id
    text = marker()
    started = time.monotonic()
    body = {"user_id": user_id, "message": text}
    message_id = await accepted(client, "user_notification", body, account=admin)

    dead = await wait_dead(custom, message_id, "notifications.user", timeout=20)
    assert time.monotonic() - started >= 0.6  # waited 0.2 s, then 0.4 s
    headers = dead["headers"]
    assert headers["x-attempts"] == 3
    assert "RuntimeError: the downstream service is down" in headers["x-error"]
    assert worker.retried == 2
    assert worker.dead_lettered == 1
    payload = {"user_id": user_id, "message": text, "notification_type": "info", "data": None}
    assert json.loads(dead["body"]) == {"type": "user_notification", "payload": payload}
    [message] = await rows(db, "SELECT * FROM messages WHERE id = %(id)s", id=str(message_id))
    assert message["status"] == "dead"
    assert "downstream service is down" in message["last_error"]

    code, output = await workers_cli(custom, "dlq", "list", "--queue", "notifications.user")
    assert code == 0, output
    listing = json.loads(output)["notifications.user"]
    assert listing["count"] == 1
    [summary] = listing["messages"]
    assert summary["message_id"] == str(message_id)
    assert (summary["type"], summary["attempts"]) == ("user_notification", 3)
    assert "downstream service is down" in summary["error"]
    code, output = await workers_cli(custom, "dlq", "show", str(message_id))
    assert code == 0, output
    assert json.loads(output)["headers"]["x-attempts"] == 3

    outage["down"] = False
    code, output = await workers_cli(custom, "dlq", "requeue", str(message_id))
    assert (code, output.strip()) == (0, "requeued 1 message(s)")
    await wait_processed(db, message_id)
    [stored] = await notifications_of(db, message_id)
    assert (stored["user_id"], stored["body"]) == (user_id, text)
    [message] = await rows(db, "SELECT * FROM messages WHERE id = %(id)s", id=str(message_id))
    assert message["status"] == "processed"
    assert await dlq.show(custom, str(message_id), None) is None


async def _insert_user(db: Any, user_id: int) -> None:
    name = f"dlq{user_id}"
    await rows(
        db,
        "INSERT INTO users (id, email, username, password_hash) OVERRIDING SYSTEM VALUE "
        "VALUES (%(id)s, %(email)s, %(name)s, 'x') RETURNING id",
        id=user_id,
        email=f"{name}@example.org",
        name=name,
    )


async def _delete_user(db: Any, user_id: int) -> None:
    await rows(db, "DELETE FROM users WHERE id = %(id)s RETURNING id", id=user_id)


async def test_a_job_that_recovers_before_the_last_attempt_is_not_dead_lettered(
    fast_retries: tuple[Any, Any, Any, Any], db: Any
) -> None:
    _, client, admin, worker = fast_retries
    user_id = 2**62 + uuid.uuid4().int % 10**9
    body = {"user_id": user_id, "message": marker()}
    await _insert_user(db, user_id)
    try:
        message_id = await accepted(client, "user_notification", body, account=admin)
        await wait_processed(db, message_id)
        assert (worker.retried, worker.dead_lettered) == (0, 0)
    finally:
        await _delete_user(db, user_id)


BIG = b'{"type": "user_notification", "payload": {"user_id": 1, "message": "x", "data": "'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x00not json{", "body is not JSON"),
        (b'"a string"', "JSON object with a string `type`"),
        (b'{"type": "launch_rockets", "payload": {}}', "no job handles type 'launch_rockets'"),
        (
            b'{"type": "user_notification", "payload": {"user_id": "x"}}',
            "invalid user_notification",
        ),
        (BIG + b"y" * MAX_MESSAGE_BYTES + b'"}}', f"exceeds {MAX_MESSAGE_BYTES}"),
        (
            b'{"type": "user_notification", "payload": {"user_id": 1, "message": "a\\u0000"}}',
            "the database refused a value",
        ),
    ],
    ids=["not-json", "not-object", "unknown-type", "invalid-payload", "too-big", "nul-text"],
)
async def test_poison_messages_are_dead_lettered_at_once_and_the_worker_goes_on(
    client: Any,
    admin: Any,
    alice: Any,
    worker: Any,
    settings: Any,
    db: Any,
    body: bytes,
    reason: str,
) -> None:
    message_id = str(uuid.uuid4())
    await publish_raw(settings, body, message_id)
    dead = await wait_dead(settings, message_id, "notifications.user")
    assert dead["headers"]["x-attempts"] == 1
    assert reason in dead["headers"]["x-error"], dead["headers"]["x-error"]
    good = {"user_id": alice.id, "message": marker()}
    await wait_processed(db, await accepted(client, "user_notification", good, account=admin))


async def test_a_message_on_the_wrong_queue_is_poison(
    worker: Any, settings: Any, alice: Any
) -> None:
    message_id = str(uuid.uuid4())
    await publish_raw(settings, user_notification_body(alice.id, "x"), message_id, "orders")
    dead = await wait_dead(settings, message_id, "orders")
    assert "no job handles type 'user_notification' on orders" in dead["headers"]["x-error"]


async def test_purge_needs_yes_then_empties_the_dead_letter_queues(
    worker: Any, settings: Any
) -> None:
    message_id = str(uuid.uuid4())
    await publish_raw(settings, b"poison", message_id)
    await wait_dead(settings, message_id, "notifications.user")

    code, output = await workers_cli(settings, "dlq", "purge")
    assert code == 2, output
    assert "--yes" in output
    listing = await dlq.list_dead(settings, "notifications.user", 1)
    assert listing["notifications.user"]["count"] >= 1

    code, output = await workers_cli(settings, "dlq", "purge", "--yes")
    assert code == 0, output
    assert output.startswith("purged ")
    assert int(output.split()[1]) >= 1

    async def empty() -> bool:
        listing = await dlq.list_dead(settings, None, 1)
        return all(q["count"] == 0 and q["messages"] == [] for q in listing.values())

    await eventually(empty, timeout=10)


async def test_the_cli_reports_unknown_ids_and_queues(settings: Any) -> None:
    unknown = str(uuid.uuid4())
    code, output = await workers_cli(settings, "dlq", "show", unknown)
    assert (code, output.strip()) == (1, f"no dead letter with message id {unknown}")
    code, output = await workers_cli(settings, "dlq", "requeue", unknown)
    assert (code, output.strip()) == (1, "requeued 0 message(s)")
    with pytest.raises(SystemExit) as exit_:
        main(["dlq", "list", "--queue", "nope"])
    assert exit_.value.code == 2
