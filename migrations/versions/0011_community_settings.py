"""community settings

One row per community and setting a community changed from its default (community.settings): the digest time,
the consultation composer's closing-day choices, the opinion map's refresh interval, a k above the site's. The
time zone stays in community.timezone, where it always was.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import community.db_types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "community_setting",
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", community.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["community_id"], ["community.id"]),
        sa.PrimaryKeyConstraint("community_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("community_setting")
