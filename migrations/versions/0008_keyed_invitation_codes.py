"""keyed invitation codes

Invitation codes are now stored as an HMAC under the site key (community.codes.hash_code), no longer as their
plain SHA-256. A migration cannot rehash them (the codes themselves were never stored), so the invitations made
before this upgrade are withdrawn: their unkeyed hashes are replaced by a marker that no code hashes to (so the
database no longer holds hashes anyone could test 50-bit guesses against), and they are marked revoked. Workers
issue new ones (README, "Invitations"). No schema change.

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-02 12:30:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import community.db_types

revision: str = "0008"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNKEYED_MARKER = "unkeyed:"  # followed by the invitation's id: unique, and never 64 hex digits


def upgrade() -> None:
    invitation = sa.table(
        "invitation",
        sa.column("id", sa.Integer()),
        sa.column("code_hash", sa.String(64)),
        sa.column("revoked_at", community.db_types.UTCDateTime(timezone=True)),
    )
    now = datetime.now(UTC)  # a migration runs once, outside any Clock
    op.execute(
        invitation.update()
        .where(~invitation.c.code_hash.startswith(UNKEYED_MARKER))
        .values(
            code_hash=sa.literal(UNKEYED_MARKER) + sa.cast(invitation.c.id, sa.String()),
            revoked_at=sa.func.coalesce(
                invitation.c.revoked_at, sa.literal(now, community.db_types.UTCDateTime(timezone=True))
            ),
        )
    )


def downgrade() -> None:
    pass  # the old hashes are gone for good; the withdrawn invitations stay withdrawn
