"""export requests

A file asked for in a chat (a consultation's outcome as XLSX, CSV or PDF) is recorded here and made by the jobs'
process, off the conversation (community.export_models).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import community.db_types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "preparing", "sent", "too_large", "refused", "failed", name="exportstatus", native_enum=False, length=40
            ),
            nullable=False,
        ),
        sa.Column("active_key", sa.String(length=160), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("created_at", community.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", community.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["channel_account.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("export_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_request_active_key"), ["active_key"], unique=True)
        batch_op.create_index(batch_op.f("ix_export_request_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("export_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_request_person_id"))
        batch_op.drop_index(batch_op.f("ix_export_request_active_key"))
    op.drop_table("export_request")
