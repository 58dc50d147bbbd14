"""What the bots answer in a private chat: `/start CODE` links the chat to the user whose
one-time code it is, `/status` says which account the chat belongs to, `/unlink` ends it.
Replies are plain text (no parse mode), so nothing a user wrote can break the markup."""

from __future__ import annotations

import logging
from datetime import UTC

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject, CommandStart, ExceptionTypeFilter
from aiogram.types import ErrorEvent, Message

from server.kernel.errors import DatabaseUnavailable, IntegrityViolation
from storage import telegram
from storage.db import Pool, connect, transaction
from workers.telegram.codes import code_hash

log = logging.getLogger(__name__)

HOW_TO_LINK = (
    "To get your notifications here, create a link code in the app "
    "(POST /users/me/telegram-link) and send it to me as: /start CODE"
)
NOT_LINKED = "This chat is not linked to any account.\n" + HOW_TO_LINK
UNKNOWN_CODE = (
    "This code is not valid (it may have been used already). Create a new one in the app."
)
EXPIRED_CODE = "This code has expired. Create a new one in the app."
UNAVAILABLE = "Sorry, the service is unavailable right now. Please try again in a minute."


def commands_router() -> Router:
    router = Router(name="telegram-commands")
    # Group chats are ignored: anyone in a group could read the code or /unlink it.
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(start_with_code, CommandStart(deep_link=True))
    router.message.register(status, CommandStart())
    router.message.register(status, Command("status"))
    router.message.register(unlink, Command("unlink"))
    router.errors.register(service_unavailable, ExceptionTypeFilter(DatabaseUnavailable))
    return router


async def start_with_code(message: Message, command: CommandObject, bot: Bot, pool: Pool) -> None:
    """`/start CODE` (typed, or sent by Telegram for a t.me/<bot>?start=CODE link)."""
    code = command.args or ""
    linked = None
    try:
        async with transaction(pool) as conn:
            spent = await telegram.consume_code(conn, code_hash(code))
            if spent is not None and spent["live"]:
                await telegram.link(conn, spent["user_id"], message.chat.id, bot.id)
                linked = await telegram.link_of_chat(conn, message.chat.id)
    except IntegrityViolation:  # this chat was being linked by another code at the same time
        await message.answer("Linking failed, please try again.")
        return
    if spent is None:
        await message.answer(UNKNOWN_CODE)
    elif not spent["live"]:
        await message.answer(EXPIRED_CODE)
    else:
        assert linked is not None
        log.info("telegram chat linked to user %d", spent["user_id"])
        await message.answer(
            f"Linked: this chat now receives the notifications of {linked['username']}. "
            "Send /status to check, /unlink to stop."
        )


async def status(message: Message, pool: Pool) -> None:
    async with connect(pool) as conn:
        linked = await telegram.link_of_chat(conn, message.chat.id)
    if linked is None:
        await message.answer(NOT_LINKED)
    else:
        since = linked["linked_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        await message.answer(
            f"This chat is linked to {linked['username']} ({linked['email']}) since {since}. "
            "Send /unlink to stop."
        )


async def unlink(message: Message, pool: Pool) -> None:
    async with connect(pool) as conn:
        user_id = await telegram.unlink_chat(conn, message.chat.id)
    if user_id is None:
        await message.answer(NOT_LINKED)
    else:
        log.info("telegram chat unlinked from user %d", user_id)
        await message.answer("Unlinked: this chat no longer receives notifications.")


async def service_unavailable(event: ErrorEvent) -> None:
    log.warning("telegram command failed: %s", event.exception)
    if event.update.message is not None:
        await event.update.message.answer(UNAVAILABLE)
