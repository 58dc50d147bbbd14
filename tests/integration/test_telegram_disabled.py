"""With TELEGRAM_BOTS_ENABLED=false (the default), or without a token, nothing talks to
Telegram and POST /users/me/telegram-link answers 404 `telegram_disabled`. Also: the bots
stop with the worker, leaving no task behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.app import create_app
from tests.conftest import make_settings
from tests.integration.test_realtime_channels import publications, subscribe
from tests.integration.test_realtime_ws import connect
from tests.support.accounts import Account
from tests.support.fake_telegram import fake_telegram_running
from tests.support.waiting import eventually
from workers.process import worker_running

TOKEN = "123456:TEST-token"


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # the default: off
        {"TELEGRAM_BOTS_ENABLED": False, "TELEGRAM_BOT_TOKENS": TOKEN},
        {"TELEGRAM_BOTS_ENABLED": True, "TELEGRAM_BOT_TOKENS": " , "},
    ],
    ids=["default", "disabled-with-token", "enabled-without-token"],
)
async def test_link_code_is_refused(
    aiohttp_client: Any, base_settings: Any, alice: Account, overrides: dict[str, Any]
) -> None:
    client = await aiohttp_client(create_app(make_settings(**overrides)))
    response = await client.post("/users/me/telegram-link", headers=alice.headers)
    assert response.status == 404
    error = (await response.json())["error"]
    assert error["code"] == "telegram_disabled"
    assert "not enabled" in error["message"]


async def test_nothing_talks_to_telegram_when_disabled(
    aiohttp_client: Any, base_settings: Any, alice: Account, admin: Account
) -> None:
    async with fake_telegram_running() as fake:
        settings = make_settings(
            TELEGRAM_BOTS_ENABLED=False, TELEGRAM_BOT_TOKENS=TOKEN, TELEGRAM_API_SERVER=fake.url
        )
        client = await aiohttp_client(create_app(settings))
        async with worker_running(settings) as worker:
            await worker.amqp.wait_connected(timeout=10)
            assert worker.ctx.telegram is None
            ws = await connect(client, alice)
            await subscribe(ws, f"user:{alice.id}")
            response = await client.post(
                "/messaging/user-notification",
                json={"user_id": alice.id, "message": "app only"},
                headers=admin.headers,
            )
            assert response.status == 202
            [publication] = await publications(ws, 1)
            assert publication["data"]["body"] == "app only"

            async def done() -> bool:
                return worker.processed >= 1

            await eventually(done)
            await ws.close()
        assert fake.calls == []


async def test_the_bots_stop_with_the_worker(base_settings: Any) -> None:
    async with fake_telegram_running() as fake:
        settings = make_settings(
            TELEGRAM_BOTS_ENABLED=True, TELEGRAM_BOT_TOKENS=TOKEN, TELEGRAM_API_SERVER=fake.url
        )
        async with worker_running(settings):

            async def polling() -> bool:
                return "getUpdates" in fake.methods()

            await eventually(polling)
        calls = len(fake.calls)
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "telegram-polling"]
        await asyncio.sleep(1.5)  # longer than one long poll: no request comes any more
        assert len(fake.calls) == calls
