"""statement priorities

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import community.db_types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consultation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("map_requested_at", community.db_types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("consultation_statement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consultation_statement", schema=None) as batch_op:
        batch_op.drop_column("priority")
    with op.batch_alter_table("consultation", schema=None) as batch_op:
        batch_op.drop_column("map_requested_at")
