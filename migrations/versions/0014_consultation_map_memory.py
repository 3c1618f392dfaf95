"""consultation map memory

What a consultation's opinion map remembers between two computations (consultation.models.MapMemory): its base
and group clusters and the group count's smoother, as Pol.is keeps them between updates.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 07:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import community.db_types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultation_map_memory",
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("memory", sa.Text(), nullable=False),
        sa.Column("computed_at", community.db_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("consultation_id"),
    )


def downgrade() -> None:
    op.drop_table("consultation_map_memory")
