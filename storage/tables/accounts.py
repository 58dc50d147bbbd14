"""Accounts: users, their login sessions (refresh-token families) and their API keys."""

from __future__ import annotations

import sqlalchemy as sa

from storage.tables.base import created_at, metadata, timestamp

ROLES = ("user", "admin", "superuser")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("full_name", sa.Text, nullable=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False, server_default="user"),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    created_at(),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    timestamp("last_login_at"),
    sa.CheckConstraint(f"role IN {ROLES!r}", name="role"),
    # Case-insensitive uniqueness: "Ann@X.org" and "ann@x.org" are one account.
    sa.Index("uq_users_email_lower", sa.func.lower(sa.column("email")), unique=True),
    sa.Index("uq_users_username_lower", sa.func.lower(sa.column("username")), unique=True),
)

# A login session = one refresh-token family. Refresh tokens rotate on every use; a spent
# token presented again revokes the whole session.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    created_at(),
    sa.Column(
        "last_used_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    timestamp("expires_at", nullable=False),
    timestamp("revoked_at"),
    sa.Column("revoked_reason", sa.Text, nullable=True),
    sa.Column("user_agent", sa.Text, nullable=True),
    sa.Column("ip", sa.Text, nullable=True),
    sa.Index("ix_sessions_user_id", "user_id"),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column(
        "session_id", sa.Uuid, sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
    ),
    created_at(),
    timestamp("spent_at"),
    sa.Index("ix_refresh_tokens_session_id", "session_id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("lookup_id", sa.Text, nullable=False, unique=True),
    sa.Column("key_hash", sa.Text, nullable=False),
    sa.Column("scopes", sa.ARRAY(sa.Text), nullable=False),
    created_at(),
    timestamp("expires_at"),
    timestamp("last_used_at"),
    timestamp("revoked_at"),
    sa.Index("ix_api_keys_user_id", "user_id"),
)
