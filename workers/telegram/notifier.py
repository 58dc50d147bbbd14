"""Copies committed notifications to the users' linked Telegram chats, through the first bot.
Best effort by contract: the stored notification is the truth, so a Telegram failure is
logged and never fails (or retries) the job that called."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError

from storage import telegram
from storage.db import Pool, connect

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # Telegram's limit for one message
SEND_TIMEOUT = 10  # seconds per sendMessage
MARKS = {"success": "✅", "warning": "⚠️", "error": "❗", "critical": "🚨"}


def message_text(level: str, body: str) -> str:
    """The text a chat receives: the body, marked when it is more than information."""
    mark = MARKS.get(level)
    text = f"{mark} {body}" if mark else body
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class TelegramNotifier:
    def __init__(self, bot: Bot, pool: Pool) -> None:
        self.bot = bot
        self.pool = pool

    async def notify(self, user_ids: Sequence[int], level: str, body: str) -> None:
        """Send to the linked chats of `user_ids` (concurrently; users without one skipped)."""
        try:
            async with connect(self.pool) as conn:
                chats = await telegram.chats_of(conn, user_ids)
        except Exception as error:  # best effort: see the module docstring
            log.warning("telegram: could not look up linked chats: %s", error)
            return
        text = message_text(level, body)
        await asyncio.gather(*(self._send(user, chat, text) for user, chat in chats.items()))

    async def _send(self, user_id: int, chat_id: int, text: str) -> None:
        try:
            await self.bot.send_message(chat_id, text, request_timeout=SEND_TIMEOUT)
        except TelegramForbiddenError:
            log.info("telegram: the chat of user %d blocked the bot or was deleted", user_id)
        except Exception as error:  # best effort: see the module docstring
            log.warning("telegram: could not notify user %d: %s", user_id, error)
