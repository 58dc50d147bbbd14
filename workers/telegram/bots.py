"""The bots of TELEGRAM_BOT_TOKENS, one dispatcher polling them all, and the notifier (the
first bot). `start()` begins polling in a task this object owns; `close()` stops it cleanly
and closes the HTTP session. Polling survives Telegram being unreachable: it retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.utils.token import TokenValidationError
from redis.asyncio import Redis

from server.kernel.settings import ConfigError, Settings
from storage.db import Pool
from workers.telegram.commands import commands_router
from workers.telegram.config import bot_tokens, bot_username_key
from workers.telegram.notifier import TelegramNotifier

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0  # seconds per API call (long polls get this plus POLL_TIMEOUT)
POLL_TIMEOUT = 10  # seconds a getUpdates long poll may wait for updates
RETRY_DELAYS = (1.0, 60.0)  # first and longest wait before polling again after a failure
STOP_TIMEOUT = 5.0


def _bot(index: int, token: str, session: AiohttpSession) -> Bot:
    try:
        return Bot(token, session=session)
    except TokenValidationError:
        raise ConfigError(
            f"TELEGRAM_BOT_TOKENS: token {index + 1} is not a bot token (<digits>:<secret>)"
        ) from None


class TelegramBots:
    def __init__(self, settings: Settings, pool: Pool, redis: Redis) -> None:
        # One HTTP session for every bot: aiogram puts the token in each request's URL.
        self.session = AiohttpSession(
            api=TelegramAPIServer.from_base(settings.TELEGRAM_API_SERVER), timeout=REQUEST_TIMEOUT
        )
        self.bots = [_bot(n, token, self.session) for n, token in enumerate(bot_tokens(settings))]
        self.dispatcher = Dispatcher(pool=pool)  # handlers receive `pool` by name
        self.dispatcher.include_router(commands_router())
        self.notifier = TelegramNotifier(self.bots[0], pool)
        self._redis = redis
        self._username_key = bot_username_key(settings)
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="telegram-polling")

    async def close(self) -> None:
        """Stop polling (an update being handled is cancelled; Telegram sends it again next
        time, as its offset was not confirmed), then close the session."""
        self._closing.set()
        if self._task is not None:
            # RuntimeError: "polling is not started" (between retries); then cancelling it is all
            with contextlib.suppress(RuntimeError, TimeoutError):
                await asyncio.wait_for(self.dispatcher.stop_polling(), STOP_TIMEOUT)
            self._task.cancel()  # a no-op when stop_polling let it finish
            await asyncio.gather(self._task, return_exceptions=True)
        await self.session.close()

    async def _poll(self) -> None:
        delay = RETRY_DELAYS[0]
        while not self._closing.is_set():
            try:
                await self._announce()
                await self.dispatcher.start_polling(
                    *self.bots,
                    polling_timeout=POLL_TIMEOUT,
                    # Updates are handled inside the polling task, not in tasks aiogram
                    # would leave running after stop (link commands are rare and quick).
                    handle_as_tasks=False,
                    # The worker owns SIGINT/SIGTERM: aiogram's handlers would replace its.
                    handle_signals=False,
                    close_bot_session=False,
                )
                return  # stopped by close()
            except Exception as error:
                log.warning("telegram polling failed: %s; retrying in %.0fs", error, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, RETRY_DELAYS[1])

    async def _announce(self) -> None:
        """Ask Telegram who the notifying bot is (failing early on a bad token) and tell the
        HTTP server, which offers t.me/<username> deep links with the link codes."""
        me = await self.bots[0].me()
        log.info("telegram bot @%s is polling (%d bot(s))", me.username, len(self.bots))
        if me.username:
            try:
                await self._redis.set(self._username_key, me.username)
            except Exception as error:  # only the deep link depends on it
                log.warning("telegram: could not record the bot's username: %s", error)
