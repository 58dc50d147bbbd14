"""POST /users/me/telegram-link (a one-time code to send the bot) and DELETE (unlink).
The bots themselves run in the worker (workers/telegram/)."""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from handlers.http import json_response
from handlers.openapi import endpoint
from server.kernel.errors import NotFound
from server.kernel.principal import PERSON, USER_WRITE, Principal
from server.kernel.settings import settings_key
from storage import telegram as links
from storage.db import db_key, transaction
from storage.redis import redis_key
from workers.telegram import config as telegram
from workers.telegram.codes import code_hash, new_code

log = logging.getLogger(__name__)


class TelegramLinkCode(BaseModel):
    code: str = Field(description="Send it to the bot as `/start CODE`; single use.")
    expires_in: int = Field(description="Seconds the code stays valid.")
    bot_username: str | None = Field(None, description="The bot to send it to, once known.")
    deep_link: str | None = Field(None, description="Opens the bot with the code filled in.")


async def _bot_username(request: web.Request) -> str | None:
    """Recorded by the worker when its bot starts; absent until then, or if Redis is down."""
    settings = request.app[settings_key]
    try:
        value = await request.app[redis_key].get(telegram.bot_username_key(settings))
    except (RedisError, OSError) as error:
        log.warning("could not read the telegram bot's username: %s", error)
        return None
    return value.decode() if isinstance(value, bytes) else value


@endpoint(
    summary="Create a Telegram link code",
    tags=["users"],
    auth=PERSON,
    response=TelegramLinkCode,
    status=201,
    errors=[404],
    description="Send the code to the bot (`/start CODE`, or open `deep_link`) to receive "
    "your notifications in that chat. A new code replaces your previous one. "
    "404 `telegram_disabled` when this server runs no Telegram bot.",
)
async def create_link(request: web.Request, principal: Principal) -> web.Response:
    settings = request.app[settings_key]
    if not telegram.enabled(settings):
        raise NotFound("Telegram notifications are not enabled here", code="telegram_disabled")
    code = new_code()
    ttl = settings.TELEGRAM_LINK_CODE_TTL
    async with transaction(request.app[db_key]) as conn:
        await links.replace_code(conn, principal.user_id, code_hash(code), ttl)
    username = await _bot_username(request)
    deep_link = f"https://t.me/{username}?start={code}" if username else None
    return json_response(
        TelegramLinkCode(code=code, expires_in=ttl, bot_username=username, deep_link=deep_link),
        status=201,
    )


@endpoint(
    summary="Unlink your Telegram chat",
    tags=["users"],
    auth=USER_WRITE,
    status=204,
    errors=[404],
    description="Your notifications stop going to Telegram. 404 `not_linked` without a link.",
)
async def delete_link(request: web.Request, principal: Principal) -> web.Response:
    async with transaction(request.app[db_key]) as conn:
        removed = await links.unlink_user(conn, principal.user_id)
    if not removed:
        raise NotFound("no Telegram chat is linked to your account", code="not_linked")
    return web.Response(status=204)
