"""Every table, as SQLAlchemy Core metadata. Alembic (migrations/) creates the schema from
these definitions; nothing calls create_all()."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TASK_STATUSES = ("queued", "running", "succeeded", "failed")
ROLES = ("user", "admin", "superuser")


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


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
    _created_at(),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    _timestamp("last_login_at"),
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
    _created_at(),
    sa.Column(
        "last_used_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    _timestamp("expires_at", nullable=False),
    _timestamp("revoked_at"),
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
    _created_at(),
    _timestamp("spent_at"),
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
    _created_at(),
    _timestamp("expires_at"),
    _timestamp("last_used_at"),
    _timestamp("revoked_at"),
    sa.Index("ix_api_keys_user_id", "user_id"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column(
        "owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("payload", JSONB, nullable=True),
    sa.Column("status", sa.Text, nullable=False, server_default="queued"),
    sa.Column("result", JSONB, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    _created_at(),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(f"status IN {TASK_STATUSES!r}", name="status"),
)

# Messages waiting to be published to RabbitMQ. A row is written in the same transaction
# as the change it announces; the relay publishes it with confirms and then deletes it.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("message_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("exchange", sa.Text, nullable=False),
    sa.Column("routing_key", sa.Text, nullable=False),
    sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False, server_default="application/json"),
    _created_at(),
    sa.Column(
        "available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbox_available_at_id", "available_at", "id"),
)


FILE_STATUSES = ("uploading", "complete", "aborted")

# Files sent over WebSocket (resumable chunks) or HTTP multipart. The bytes live on disk
# under UPLOAD_DIR; this row holds what is known about them.
files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("mime", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("received", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("expected_sha256", sa.Text, nullable=True),
    sa.Column("sha256", sa.Text, nullable=True),
    sa.Column("channel", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False, server_default="uploading"),
    _created_at(),
    _timestamp("completed_at"),
    sa.CheckConstraint(f"status IN {FILE_STATUSES!r}", name="status"),
    sa.CheckConstraint("size >= 0 AND received >= 0 AND received <= size", name="sizes"),
    sa.Index("ix_files_owner_id", "owner_id"),
)

NOTIFICATION_LEVELS = ("info", "success", "warning", "error")

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    ),
    sa.Column("channel", sa.Text, nullable=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False, server_default=""),
    sa.Column("level", sa.Text, nullable=False, server_default="info"),
    sa.Column("data", JSONB, nullable=True),
    sa.Column("message_id", sa.Uuid, nullable=True),
    _created_at(),
    _timestamp("read_at"),
    sa.CheckConstraint(f"level IN {NOTIFICATION_LEVELS!r}", name="level"),
    sa.CheckConstraint("user_id IS NOT NULL OR channel IS NOT NULL", name="target"),
    sa.Index("ix_notifications_user_id_id", "user_id", "id"),
)


MESSAGE_STATUSES = ("accepted", "processed", "dead")

# Every message accepted by POST /messaging/* (or MessageClient): what was asked, by whom,
# and what became of it. Written in the same transaction as its outbox row.
messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column(
        "created_by", sa.BigInteger, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("request_hash", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False, server_default="accepted"),
    sa.Column("last_error", sa.Text, nullable=True),
    _created_at(),
    _timestamp("processed_at"),
    sa.CheckConstraint(f"status IN {MESSAGE_STATUSES!r}", name="status"),
    sa.Index(
        "uq_messages_created_by_idempotency_key",
        "created_by",
        "idempotency_key",
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        # MessageClient may send without a user: a NULL sender is still one sender.
        postgresql_nulls_not_distinct=True,
    ),
)

# The worker's inbox: ids of messages whose effect is committed. Inserted in the same
# transaction as the effect, so a redelivered message never applies it twice.
processed_messages = sa.Table(
    "processed_messages",
    metadata,
    sa.Column("message_id", sa.Uuid, primary_key=True),
    sa.Column("queue", sa.Text, nullable=False),
    sa.Column(
        "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

ORDER_STATUSES = ("received", "processing", "completed", "failed")

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),  # the caller's order id
    sa.Column(
        "user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("status", sa.Text, nullable=False, server_default="received"),
    sa.Column("items", JSONB, nullable=True),
    sa.Column("total", sa.Numeric(14, 2), nullable=True),
    sa.Column("result", JSONB, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("history", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    _created_at(),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.CheckConstraint(f"status IN {ORDER_STATUSES!r}", name="status"),
    sa.Index("ix_orders_user_id", "user_id"),
)

SEVERITIES = ("debug", "info", "warning", "error", "critical")

system_events = sa.Table(
    "system_events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("message_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("event_name", sa.Text, nullable=False),
    sa.Column("event_data", JSONB, nullable=True),
    sa.Column("severity", sa.Text, nullable=False),
    _created_at(),
    sa.CheckConstraint(f"severity IN {SEVERITIES!r}", name="severity"),
)

# Telegram: which chat receives a user's notifications (one chat per user, one user per
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
    _created_at(),
    _timestamp("expires_at", nullable=False),
)


# WebRTC rooms: definitions here, membership in Redis (signaling/rooms.py).
rooms = sa.Table(
    "rooms",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column(
        "owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("max_participants", sa.Integer, nullable=False),
    sa.Column("media", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("record", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("allowed_user_ids", sa.ARRAY(sa.BigInteger), nullable=True),
    _created_at(),
    sa.CheckConstraint("max_participants BETWEEN 1 AND 1000", name="max_participants"),
)
