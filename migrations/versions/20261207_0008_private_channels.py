"""private channels and their members

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "private_channels",
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_private_channels_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_private_channels")),
    )
    op.create_index("ix_private_channels_owner_id", "private_channels", ["owner_id"], unique=False)
    op.create_table(
        "private_channel_members",
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.Text(), server_default="member", nullable=False),
        sa.Column(
            "added_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role IN ('owner', 'member')", name=op.f("ck_private_channel_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["channel"],
            ["private_channels.channel"],
            name=op.f("fk_private_channel_members_channel_private_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_private_channel_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel", "user_id", name=op.f("pk_private_channel_members")),
    )
    op.create_index(
        "ix_private_channel_members_user_id",
        "private_channel_members",
        ["user_id"],
        unique=False,
    )
    # deleting a private channel takes it off its files (files.channel = NULL)
    op.create_index("ix_files_channel", "files", ["channel"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_files_channel", table_name="files")
    op.drop_index("ix_private_channel_members_user_id", table_name="private_channel_members")
    op.drop_table("private_channel_members")
    op.drop_index("ix_private_channels_owner_id", table_name="private_channels")
    op.drop_table("private_channels")
