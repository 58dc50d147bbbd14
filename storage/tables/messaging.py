"""Messaging: the accepted messages, the outbox the relay publishes from, and the worker's
inbox of processed message ids."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from storage.tables.base import created_at, metadata, timestamp

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
    created_at(),
    sa.Column(
        "available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbox_available_at_id", "available_at", "id"),
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
    created_at(),
    timestamp("processed_at"),
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
