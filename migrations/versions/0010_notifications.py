"""notifications through the outbox

Every message to a person other than the one in the current chat is an outbox row now (community.notify), so an
outbox row says what it is about and in which language it was written, and a row can change a message another
row delivered:

- ``topic``: what the message is about (e.g. ``statement:12:moderation``), so the copies sent to several people
  (the moderators' copies of a moderation request) can be found again and edited once one of them decided.
- ``language``: the language the row's text is in, so an edit is written in the same language.
- ``edit_of``: for a row that edits a delivered message, the id of the row that delivered it (its
  ``external_id`` is the channel's message id).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("topic", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("edit_of", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbox_topic"), ["topic"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_topic"))
        batch_op.drop_column("edit_of")
        batch_op.drop_column("language")
        batch_op.drop_column("topic")
