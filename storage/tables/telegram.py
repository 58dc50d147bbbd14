"""Telegram: which chat receives a user's notifications, and the one-time link codes."""

from __future__ import annotations

import sqlalchemy as sa

from storage.tables.base import created_at, metadata, timestamp

# Which chat receives a user's notifications (one chat per user, one user per
# chat), and the one-time codes that link them. Only a code's SHA-256 is stored; a user
# has at most one outstanding code (a new one replaces it).
telegram_links = sa.Table(
    "telegram_links",
    metadata,
    sa.Column(
        "user_id",
        sa.BigInteger,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("chat_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("bot_id", sa.BigInteger, nullable=True),  # the bot the chat linked through
    sa.Column(
        "linked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

telegram_link_codes = sa.Table(
    "telegram_link_codes",
    metadata,
    sa.Column("code_hash", sa.Text, primary_key=True),
    sa.Column(
        "user_id",
        sa.BigInteger,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    created_at(),
    timestamp("expires_at", nullable=False),
)
