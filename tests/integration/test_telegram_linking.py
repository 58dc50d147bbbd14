"""Linking a Telegram chat, against a fake Bot API server: POST /users/me/telegram-link gives
a one-time code, `/start CODE` sent to the bot links the chat; /status and /unlink; expired,
spent and replaced codes are refused; DELETE /users/me/telegram-link unlinks from the web."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from server.kernel.settings import Settings
from storage.db import transaction
from storage.tables import telegram_link_codes, telegram_links
from tests.conftest import make_settings
from tests.support.accounts import Account, AsUser
from tests.support.fake_telegram import (
    BOT_USERNAME,
    FakeTelegram,
    fake_telegram_running,
    link_chat,
    link_code,
    new_chat_id,
)
from tests.support.waiting import eventually

TOKEN = "123456:TEST-token"

pytestmark = pytest.mark.usefixtures("worker")  # the bots poll inside the worker


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with fake_telegram_running() as fake:
        yield fake


@pytest.fixture
def settings(base_settings: Settings, fake_telegram: FakeTelegram) -> Settings:
    """The session's database and queues, with the bots on and talking to the fake."""
    return make_settings(
        TELEGRAM_BOTS_ENABLED=True,
        TELEGRAM_BOT_TOKENS=TOKEN,
        TELEGRAM_API_SERVER=fake_telegram.url,
    )


async def ask(fake: FakeTelegram, chat_id: int, text: str) -> str:
    fake.send_text(TOKEN, chat_id, text)
    return await fake.next_message(chat_id)


async def chat_of(db: Any, user_id: int) -> int | None:
    async with transaction(db) as conn:
        chat_id: int | None = await conn.fetch_value(
            sa.select(telegram_links.c.chat_id).where(telegram_links.c.user_id == user_id)
        )
    return chat_id


async def test_start_with_code_links_the_chat(
    user_client: AsUser, alice: Account, fake_telegram: FakeTelegram, db: Any
) -> None:
    body = await link_code(user_client)
    assert set(body) == {"code", "expires_in", "bot_username", "deep_link"}
    assert len(body["code"]) == 10 and body["expires_in"] == 600
    chat = new_chat_id()

    reply = await ask(fake_telegram, chat, f"/start {body['code']}")

    assert reply.startswith("Linked") and alice.username in reply
    async with transaction(db) as conn:
        row = await conn.fetch_one(
            sa.select(telegram_links).where(telegram_links.c.user_id == alice.id)
        )
        code_rows = await conn.fetch_value(
            sa.select(sa.func.count())
            .select_from(telegram_link_codes)
            .where(telegram_link_codes.c.user_id == alice.id)
        )
    assert row is not None and row["chat_id"] == chat and row["bot_id"] == 123456
    assert code_rows == 0  # spent


async def test_code_is_read_case_insensitively(
    user_client: AsUser, alice: Account, fake_telegram: FakeTelegram, db: Any
) -> None:
    code = (await link_code(user_client))["code"]
    chat = new_chat_id()
    assert (await ask(fake_telegram, chat, f"/start {code.lower()}")).startswith("Linked")
    assert await chat_of(db, alice.id) == chat


async def test_only_the_hash_of_a_code_is_stored(user_client: AsUser, db: Any) -> None:
    code = (await link_code(user_client))["code"]
    async with transaction(db) as conn:
        stored = await conn.fetch_value(
            sa.select(telegram_link_codes.c.code_hash).where(
                telegram_link_codes.c.user_id == user_client.account.id
            )
        )
    assert stored is not None and code not in stored and len(stored) == 64


async def test_the_answer_offers_a_deep_link_once_the_bot_is_known(user_client: AsUser) -> None:
    async def answer_with_link() -> dict[str, Any]:
        body = await link_code(user_client)
        return body if body["deep_link"] else {}

    body = await eventually(answer_with_link)
    assert body["bot_username"] == BOT_USERNAME
    assert body["deep_link"] == f"https://t.me/{BOT_USERNAME}?start={body['code']}"


async def test_status_and_unlink(
    user_client: AsUser, alice: Account, fake_telegram: FakeTelegram, db: Any
) -> None:
    chat = new_chat_id()
    assert "not linked" in await ask(fake_telegram, chat, "/status")

    await link_chat(fake_telegram, user_client, TOKEN, chat)
    status = await ask(fake_telegram, chat, "/status")
    assert f"linked to {alice.username} ({alice.email})" in status

    assert (await ask(fake_telegram, chat, "/unlink")).startswith("Unlinked")
    assert await chat_of(db, alice.id) is None
    assert "not linked" in await ask(fake_telegram, chat, "/status")
    assert "not linked" in await ask(fake_telegram, chat, "/unlink")


async def test_start_without_a_code_explains_how_to_link(fake_telegram: FakeTelegram) -> None:
    reply = await ask(fake_telegram, new_chat_id(), "/start")
    assert "not linked" in reply and "/start CODE" in reply


@pytest.mark.parametrize("garbage", ["WRONGCODE1", "!!!", "x" * 300, "ABC DEF"])
async def test_unknown_code_is_refused(
    user_client: AsUser, fake_telegram: FakeTelegram, garbage: str
) -> None:
    await link_code(user_client)  # a real code exists, but not this one
    chat = new_chat_id()
    assert "not valid" in await ask(fake_telegram, chat, f"/start {garbage}")
    assert "not linked" in await ask(fake_telegram, chat, "/status")


async def test_spent_code_is_refused(
    user_client: AsUser, alice: Account, fake_telegram: FakeTelegram, db: Any
) -> None:
    code = (await link_code(user_client))["code"]
    first, second = new_chat_id(), new_chat_id()
    assert (await ask(fake_telegram, first, f"/start {code}")).startswith("Linked")

    assert "not valid" in await ask(fake_telegram, second, f"/start {code}")
    assert await chat_of(db, alice.id) == first


async def test_expired_code_is_refused(
    user_client: AsUser, alice: Account, fake_telegram: FakeTelegram, db: Any
) -> None:
    code = (await link_code(user_client))["code"]
    async with transaction(db) as conn:
        await conn.execute(
            sa.update(telegram_link_codes)
            .where(telegram_link_codes.c.user_id == alice.id)
            .values(expires_at=sa.func.now() - sa.text("interval '1 second'"))
        )
    chat = new_chat_id()

    assert "expired" in await ask(fake_telegram, chat, f"/start {code}")
    assert await chat_of(db, alice.id) is None
    assert "not valid" in await ask(fake_telegram, chat, f"/start {code}")  # spent, too


async def test_a_new_code_replaces_the_previous_one(
    user_client: AsUser, alice: Account, fake_telegram: FakeTelegram, db: Any
) -> None:
    old = (await link_code(user_client))["code"]
    new = (await link_code(user_client))["code"]
    chat = new_chat_id()
    assert "not valid" in await ask(fake_telegram, chat, f"/start {old}")
    assert (await ask(fake_telegram, chat, f"/start {new}")).startswith("Linked")
    assert await chat_of(db, alice.id) == chat


async def test_one_chat_per_user_and_one_user_per_chat(
    client: Any, alice: Account, bob: Account, fake_telegram: FakeTelegram, db: Any
) -> None:
    as_alice, as_bob = AsUser(client, alice), AsUser(client, bob)
    first, second = new_chat_id(), new_chat_id()
    await link_chat(fake_telegram, as_alice, TOKEN, first)
    await link_chat(fake_telegram, as_alice, TOKEN, second)  # alice moves to another chat
    assert await chat_of(db, alice.id) == second

    await link_chat(fake_telegram, as_bob, TOKEN, second)  # bob takes that chat over
    assert await chat_of(db, bob.id) == second
    assert await chat_of(db, alice.id) is None
    assert bob.username in await ask(fake_telegram, second, "/status")


async def test_delete_unlinks_from_the_web(
    user_client: AsUser, alice: Account, fake_telegram: FakeTelegram, db: Any
) -> None:
    chat = new_chat_id()
    await link_chat(fake_telegram, user_client, TOKEN, chat)

    response = await user_client.delete("/users/me/telegram-link")
    assert response.status == 204
    assert await chat_of(db, alice.id) is None
    assert "not linked" in await ask(fake_telegram, chat, "/status")

    again = await user_client.delete("/users/me/telegram-link")
    assert again.status == 404
    assert (await again.json())["error"]["code"] == "not_linked"


async def test_a_link_code_needs_a_logged_in_person(client: Any) -> None:
    response = await client.post("/users/me/telegram-link")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
