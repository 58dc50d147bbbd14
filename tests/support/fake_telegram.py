"""A fake Telegram Bot API server on a free local port: just what aiogram's polling and
sendMessage use (`POST /bot<token>/<method>`, form-encoded, answered `{"ok", "result"}`).
Tests queue incoming messages with `send_text()` and read the bot's answers with
`next_message()`; every call is recorded in `calls`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USERNAME = "test_bot"
JSON_FIELDS = {"allowed_updates", "entities", "link_preview_options", "reply_markup"}
LONG_POLL_CAP = 1.0  # seconds a getUpdates waits at most here, so shutdowns never wait long


@dataclass
class Call:
    token: str
    method: str
    params: dict[str, Any]


@dataclass
class FakeTelegram:
    calls: list[Call] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)  # method -> HTTP status to answer
    _updates: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    _sent: dict[int, asyncio.Queue[str]] = field(default_factory=lambda: defaultdict(asyncio.Queue))
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""

    # -- the test's side ---------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        self._arrived.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def send_text(self, token: str, chat_id: int, text: str) -> None:
        """A private message from the user `chat_id` to the bot of `token`."""
        command = text.split()[0] if text.startswith("/") else ""
        entities = [{"type": "bot_command", "offset": 0, "length": len(command)}] if command else []
        user = {"id": chat_id, "is_bot": False, "first_name": "Tess"}
        update_id = next(self._ids)
        self._updates[token].append(
            {
                "update_id": update_id,
                "message": {
                    "message_id": update_id,
                    "date": int(time.time()),
                    "chat": {**user, "type": "private"},
                    "from": user,
                    "text": text,
                    "entities": entities,
                },
            }
        )
        self._arrived.set()

    async def next_message(self, chat_id: int, timeout: float = 10) -> str:
        """The text of the next message a bot sent to this chat."""
        return await asyncio.wait_for(self._sent[chat_id].get(), timeout)

    def sent_to(self, chat_id: int) -> int:
        """How many sent messages to this chat are still unread by next_message()."""
        return self._sent[chat_id].qsize()

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    # -- the Bot API's side ------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params = {key: _value(key, value) for key, value in (await request.post()).items()}
        self.calls.append(Call(token, method, params))
        if method in self.failing:
            status = self.failing[method]
            return web.json_response(
                {"ok": False, "error_code": status, "description": "Internal Server Error"},
                status=status,
            )
        answer = getattr(self, f"_{method}", None)
        if answer is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.json_response({"ok": True, "result": await answer(token, params)})

    async def _getMe(self, token: str, params: dict[str, Any]) -> Any:
        return _bot_user(token)

    async def _getUpdates(self, token: str, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset", 0))
        self._updates[token] = [u for u in self._updates[token] if u["update_id"] >= offset]
        if not self._updates[token]:
            self._arrived.clear()
            wait = min(float(params.get("timeout", 0)), LONG_POLL_CAP)
            try:
                await asyncio.wait_for(self._arrived.wait(), wait)
            except TimeoutError:
                return []
        return self._updates[token]

    async def _sendMessage(self, token: str, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        self._sent[chat_id].put_nowait(params["text"])
        return {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Tess"},
            "from": _bot_user(token),
            "text": params["text"],
        }

    async def _deleteWebhook(self, token: str, params: dict[str, Any]) -> Any:
        return True

    async def _close(self, token: str, params: dict[str, Any]) -> Any:
        return True

    async def _logOut(self, token: str, params: dict[str, Any]) -> Any:
        return True


def _bot_user(token: str) -> dict[str, Any]:
    return {
        "id": int(token.split(":")[0]),
        "is_bot": True,
        "first_name": "Test bot",
        "username": BOT_USERNAME,
    }


def _value(key: str, raw: Any) -> Any:
    """aiogram sends lists and objects as JSON strings and everything else as text."""
    return json.loads(raw) if key in JSON_FIELDS and isinstance(raw, str) else raw


@contextlib.asynccontextmanager
async def fake_telegram_running() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


def new_chat_id() -> int:
    """A private chat id no other test uses (chat ids are unique across the links table)."""
    return random.randint(10**9, 2**40)


async def link_code(user: Any) -> dict[str, Any]:
    """POST /users/me/telegram-link as `user` (an AsUser); the answer's body."""
    response = await user.post("/users/me/telegram-link")
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def link_chat(fake: FakeTelegram, user: Any, token: str, chat_id: int) -> None:
    """The whole linking flow: a code from the API, `/start CODE` from the chat."""
    code = (await link_code(user))["code"]
    fake.send_text(token, chat_id, f"/start {code}")
    reply = await fake.next_message(chat_id)
    assert reply.startswith("Linked"), reply
