"""The optional Telegram channel: bots that link chats to users (`/start CODE`, `/status`,
`/unlink`) and a notifier that copies notifications to linked chats. Off unless
TELEGRAM_BOTS_ENABLED and at least one token is set. docs/TELEGRAM.md tells the whole story.

    config.py    enabled(), the bot tokens (no aiogram import: the HTTP server asks cheaply)
    codes.py     one-time link codes
    commands.py  what the bots answer
    bots.py      the dispatcher polling every bot
    notifier.py  copies notifications to linked chats
"""
