"""Private channels (`private:<name>`) and their members: who may subscribe, publish and see
presence there. The hub reads membership through a Redis cache (server/hub/private.py)."""

from __future__ import annotations

import sqlalchemy as sa

from storage.tables.base import created_at, metadata

MEMBER_ROLES = ("owner", "member")

private_channels = sa.Table(
    "private_channels",
    metadata,
    sa.Column("channel", sa.Text, primary_key=True),  # the whole name: `private:<name>`
    sa.Column(
        "owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    created_at(),
    sa.Index("ix_private_channels_owner_id", "owner_id"),
)

# The owner is a member too (role `owner`), so one lookup answers "may this user".
private_channel_members = sa.Table(
    "private_channel_members",
    metadata,
    sa.Column(
        "channel",
        sa.Text,
        sa.ForeignKey("private_channels.channel", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_id",
        sa.BigInteger,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("role", sa.Text, nullable=False, server_default="member"),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(f"role IN {MEMBER_ROLES!r}", name="role"),
    sa.Index("ix_private_channel_members_user_id", "user_id"),
)
