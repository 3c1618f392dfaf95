"""consultation vote tally

The jobs' worker's last count of a consultation's votes (consultation.models.VoteTallySnapshot): the staff's
figures screen shows it for a consultation too large to count live inside the conversation.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 02:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import community.db_types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultation_vote_tally",
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("voters", sa.Integer(), nullable=False),
        sa.Column("agree", sa.Integer(), nullable=False),
        sa.Column("disagree", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("counted_at", community.db_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("consultation_id"),
    )


def downgrade() -> None:
    op.drop_table("consultation_vote_tally")
