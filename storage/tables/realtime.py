"""Realtime: stored notifications, uploaded files and WebRTC room definitions."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from storage.tables.base import created_at, metadata, timestamp

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
    created_at(),
    timestamp("read_at"),
    sa.CheckConstraint(f"level IN {NOTIFICATION_LEVELS!r}", name="level"),
    sa.CheckConstraint("user_id IS NOT NULL OR channel IS NOT NULL", name="target"),
    sa.Index("ix_notifications_user_id_id", "user_id", "id"),
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
    created_at(),
    timestamp("completed_at"),
    sa.CheckConstraint(f"status IN {FILE_STATUSES!r}", name="status"),
    sa.CheckConstraint("size >= 0 AND received >= 0 AND received <= size", name="sizes"),
    sa.Index("ix_files_owner_id", "owner_id"),
    sa.Index("ix_files_channel", "channel"),  # a deleted private channel's files
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
    created_at(),
    sa.CheckConstraint("max_participants BETWEEN 1 AND 1000", name="max_participants"),
)
