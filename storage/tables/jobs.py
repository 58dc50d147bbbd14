"""What the worker's jobs keep: example tasks, orders and system events."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from storage.tables.base import created_at, metadata

TASK_STATUSES = ("queued", "running", "succeeded", "failed")

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
    created_at(),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(f"status IN {TASK_STATUSES!r}", name="status"),
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
    created_at(),
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
    created_at(),
    sa.CheckConstraint(f"severity IN {SEVERITIES!r}", name="severity"),
)
