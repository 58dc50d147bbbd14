"""Whether the bots run, their tokens, and where the notifying bot's @username is kept.

This module imports no aiogram, so the HTTP server can ask `enabled()` cheaply."""

from __future__ import annotations

from server.kernel.settings import Settings


def bot_tokens(settings: Settings) -> list[str]:
    """The configured tokens in order (the first one sends notifications)."""
    raw = settings.TELEGRAM_BOT_TOKENS.get_secret_value()
    return [token.strip() for token in raw.split(",") if token.strip()]


def enabled(settings: Settings) -> bool:
    return settings.TELEGRAM_BOTS_ENABLED and bool(bot_tokens(settings))


def bot_username_key(settings: Settings) -> str:
    """Redis key where the worker records the notifying bot's @username, so the HTTP server
    can offer a t.me deep link without calling Telegram itself."""
    return f"{settings.REDIS_PREFIX}:telegram:bot-username"
