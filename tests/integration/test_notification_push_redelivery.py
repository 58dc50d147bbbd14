"""A worker that loses the broker after storing a notification and before pushing it: the
message comes back, the inbox knows it as done, and the stored notification is pushed all
the same (at least once; clients drop a repeat by its `id`).

The real worker runs in this process against the real broker, PostgreSQL and Redis. The only
thing the test adds is the moment: its first push of the notification closes the worker's
RabbitMQ connection and waits, so the worker cancels the job exactly between its commit and
its push (as a SIGKILL or `rabbitmqctl stop_app` does by chance, 1 in a few thousand)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.test_messaging_notifications import publication_on, subscribed
from tests.integration.test_messaging_support import (
    accepted,
    marker,
    notifications_of,
    processed,
)
from tests.support.accounts import Account
from workers.worker import Worker

pytestmark = pytest.mark.usefixtures("clean_tables")


class BrokerCutBeforePush:
    """Replaces the worker's push: the first push of a notification whose body is `text`
    closes the worker's broker connection instead, and never returns (the worker cancels
    the job when it sees the connection gone). Every other push goes through."""

    def __init__(self, worker: Worker, text: str) -> None:
        self.worker = worker
        self.text = text
        self.real = worker.ctx.publisher.publish_value
        self.cut = False
        self.cancelled = asyncio.Event()
        self._closing: list[asyncio.Task[Any]] = []

    async def publish_value(
        self, channel: str, data: Any, sender: dict[str, Any] | None = None
    ) -> Any:
        if self.cut or data.get("body") != self.text:
            return await self.real(channel, data, sender)
        self.cut = True
        connection = self.worker.amqp.connection
        assert connection is not None
        self._closing.append(asyncio.create_task(connection.close()))
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        raise AssertionError("the worker did not cancel the job when the broker went away")

    async def close(self) -> None:
        await asyncio.gather(*self._closing, return_exceptions=True)


async def test_a_user_notification_stored_but_not_pushed_is_pushed_on_redelivery(
    client: Any,
    admin: Account,
    alice: Account,
    worker: Worker,
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = f"user:{alice.id}"
    ws = await subscribed(client, alice, channel)
    text = marker("redelivered")
    cut = BrokerCutBeforePush(worker, text)
    monkeypatch.setattr(worker.ctx.publisher, "publish_value", cut.publish_value)
    try:
        message_id = await accepted(
            client, "user_notification", {"user_id": alice.id, "message": text}, account=admin
        )
        event = (await publication_on(ws, channel, timeout=20))["data"]
    finally:
        await cut.close()
    assert cut.cancelled.is_set()  # the first delivery died between its commit and its push
    [stored] = await notifications_of(db, message_id)  # stored once
    assert event["id"] == stored["id"]
    assert event["message_id"] == str(message_id)
    assert event["body"] == text
    assert await processed(db, message_id) == 1
    await ws.close()


async def test_an_admin_notification_stored_but_not_pushed_is_pushed_on_redelivery(
    client: Any,
    admin: Account,
    worker: Worker,
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = f"user:{admin.id}"
    ws = await subscribed(client, admin, own, "admin:notifications")
    text = marker("redelivered-admin")
    cut = BrokerCutBeforePush(worker, text)
    monkeypatch.setattr(worker.ctx.publisher, "publish_value", cut.publish_value)
    try:
        message_id = await accepted(
            client, "admin_notification", {"message": text, "severity": "warning"}, account=admin
        )
        personal = (await publication_on(ws, own, timeout=20))["data"]
        shared = (await publication_on(ws, "admin:notifications", timeout=20))["data"]
    finally:
        await cut.close()
    assert cut.cancelled.is_set()
    stored = await notifications_of(db, message_id)
    mine = [row for row in stored if row["user_id"] == admin.id]
    assert len(mine) == 1  # stored once per admin, not again on the redelivery
    assert personal["id"] == mine[0]["id"]
    assert shared["body"] == text
    assert shared["severity"] == "warning"
    await ws.close()
