"""Notifications copied to Telegram: a user notification sent through the messaging API
reaches the user's realtime channel and their linked chat; admin notifications reach linked
admins; a failing Telegram never fails or retries the job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.integration.test_realtime_channels import publications, subscribe
from tests.integration.test_realtime_ws import connect
from tests.support.accounts import Account, AsUser
from tests.support.fake_telegram import (
    FakeTelegram,
    fake_telegram_running,
    link_chat,
    new_chat_id,
)
from tests.support.waiting import eventually
from workers.worker import Worker

TOKEN = "123456:TEST-token"


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with fake_telegram_running() as fake:
        yield fake


@pytest.fixture
def settings(base_settings: Settings, fake_telegram: FakeTelegram) -> Settings:
    return make_settings(
        TELEGRAM_BOTS_ENABLED=True,
        TELEGRAM_BOT_TOKENS=TOKEN,
        TELEGRAM_API_SERVER=fake_telegram.url,
    )


async def notify(client: Any, admin: Account, **body: Any) -> None:
    response = await client.post("/messaging/user-notification", json=body, headers=admin.headers)
    assert response.status == 202, await response.text()


async def processed(worker: Worker, count: int) -> None:
    """Wait until the worker has finished (and acked) `count` jobs in all."""

    async def done() -> bool:
        return worker.processed >= count

    await eventually(done)


async def test_user_notification_reaches_realtime_and_telegram(
    client: Any, alice: Account, admin: Account, worker: Worker, fake_telegram: FakeTelegram
) -> None:
    chat = new_chat_id()
    await link_chat(fake_telegram, AsUser(client, alice), TOKEN, chat)
    ws = await connect(client, alice)
    await subscribe(ws, f"user:{alice.id}")

    await notify(
        client, admin, user_id=alice.id, message="Your export is ready", notification_type="success"
    )

    [publication] = await publications(ws, 1)
    assert publication["data"]["kind"] == "notification"
    assert publication["data"]["body"] == "Your export is ready"
    assert await fake_telegram.next_message(chat) == "✅ Your export is ready"
    sends = [call for call in fake_telegram.calls if call.method == "sendMessage"]
    assert sends[-1].token == TOKEN and int(sends[-1].params["chat_id"]) == chat
    assert "parse_mode" not in sends[-1].params  # the user's text is never read as markup
    await ws.close()


async def test_users_without_a_chat_get_nothing_on_telegram(
    client: Any, bob: Account, admin: Account, worker: Worker, fake_telegram: FakeTelegram
) -> None:
    ws = await connect(client, bob)
    await subscribe(ws, f"user:{bob.id}")
    await notify(client, admin, user_id=bob.id, message="just the app")
    [publication] = await publications(ws, 1)
    assert publication["data"]["body"] == "just the app"
    await processed(worker, 1)
    assert "sendMessage" not in fake_telegram.methods()
    await ws.close()


async def test_admin_notification_reaches_linked_admins(
    client: Any, admin: Account, worker: Worker, fake_telegram: FakeTelegram
) -> None:
    chat = new_chat_id()
    await link_chat(fake_telegram, AsUser(client, admin), TOKEN, chat)
    response = await client.post(
        "/messaging/admin-notification",
        json={"message": "disk almost full", "severity": "critical"},
        headers=admin.headers,
    )
    assert response.status == 202
    assert await fake_telegram.next_message(chat) == "🚨 disk almost full"


async def test_long_messages_are_cut_to_telegrams_limit(
    client: Any, alice: Account, admin: Account, worker: Worker, fake_telegram: FakeTelegram
) -> None:
    chat = new_chat_id()
    await link_chat(fake_telegram, AsUser(client, alice), TOKEN, chat)
    await notify(client, admin, user_id=alice.id, message="x" * 5000)
    text = await fake_telegram.next_message(chat)
    assert len(text) == 4096 and text.endswith("…")


async def test_a_failing_telegram_never_fails_the_job(
    client: Any, alice: Account, admin: Account, worker: Worker, fake_telegram: FakeTelegram
) -> None:
    chat = new_chat_id()
    as_alice = AsUser(client, alice)
    await link_chat(fake_telegram, as_alice, TOKEN, chat)
    ws = await connect(client, alice)
    await subscribe(ws, f"user:{alice.id}")
    fake_telegram.failing["sendMessage"] = 500

    await notify(client, admin, user_id=alice.id, message="through the app only")

    [publication] = await publications(ws, 1)
    assert publication["data"]["body"] == "through the app only"
    await processed(worker, 1)
    assert fake_telegram.methods().count("sendMessage") >= 2  # the /start reply and this one
    assert (worker.retried, worker.dead_lettered) == (0, 0)
    stored = await (await as_alice.get("/users/me/notifications")).json()
    assert [item["body"] for item in stored["items"]] == ["through the app only"]

    del fake_telegram.failing["sendMessage"]  # Telegram is back: the next one goes through
    await notify(client, admin, user_id=alice.id, message="and Telegram again")
    assert await fake_telegram.next_message(chat) == "and Telegram again"
    await ws.close()
