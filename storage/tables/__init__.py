"""Every table, as SQLAlchemy Core metadata, one module per area. Alembic (migrations/)
creates the schema from `metadata`, which holds them all once this package is imported;
nothing calls create_all().

    base.py       metadata (naming convention) and shared column helpers
    accounts.py   users, sessions, refresh_tokens, api_keys
    messaging.py  messages, outbox, processed_messages
    jobs.py       tasks, orders, system_events
    realtime.py   notifications, files, rooms
    private_channels.py  private_channels, private_channel_members
    telegram.py   telegram_links, telegram_link_codes
"""

from storage.tables.accounts import api_keys, refresh_tokens, sessions, users
from storage.tables.base import metadata
from storage.tables.jobs import orders, system_events, tasks
from storage.tables.messaging import messages, outbox, processed_messages
from storage.tables.private_channels import private_channel_members, private_channels
from storage.tables.realtime import files, notifications, rooms
from storage.tables.telegram import telegram_link_codes, telegram_links

__all__ = [
    "api_keys",
    "files",
    "messages",
    "metadata",
    "notifications",
    "orders",
    "outbox",
    "private_channel_members",
    "private_channels",
    "processed_messages",
    "refresh_tokens",
    "rooms",
    "sessions",
    "system_events",
    "tasks",
    "telegram_link_codes",
    "telegram_links",
    "users",
]
