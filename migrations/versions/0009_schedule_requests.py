"""schedule requests: consequences as rows

The table schedule_request holds the jobs use cases ask for in their own transaction (community.scheduling),
which the relay of the jobs' process hands to the scheduler (bot/relay.py) and replays at start. Before this,
each feature caught up at start by hand; those catch-ups are gone, so this migration writes the rows they would
have acted on: the send of every notice still SCHEDULED (or SENDING but never fanned out), the opening and
closing of every consultation still to open, the closing of every open one, and the outcome of every closed one
whose participants were not told it. The scheduler's own jobs (table scheduled_job) stay; a row handed under the
same key replaces its job, so nothing runs twice.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:30:00.000000
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import community.db_types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TYPE = community.db_types.UTCDateTime(timezone=True)


def _args(**values: int) -> str:
    return json.dumps(values, sort_keys=True)


def upgrade() -> None:
    table = op.create_table(
        "schedule_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("at", UTC_TYPE, nullable=True),
        sa.Column("handed", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_TYPE, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("schedule_request", schema=None) as batch_op:
        batch_op.create_index("ix_schedule_request_key", ["key"], unique=False)

    now = datetime.now(UTC)  # a migration runs once, outside any Clock
    bind = op.get_bind()
    notice = sa.table(
        "notice",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("send_at", UTC_TYPE),
        sa.column("queued_at", UTC_TYPE),
    )
    consultation = sa.table(
        "consultation",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("opens_at", UTC_TYPE),
        sa.column("closes_at", UTC_TYPE),
    )
    audit = sa.table(
        "audit_entry",
        sa.column("action", sa.String()),
        sa.column("subject_type", sa.String()),
        sa.column("subject_id", sa.Integer()),
    )
    rows: list[dict[str, Any]] = []

    def ask(key: str, job: str, args: str, at: datetime) -> None:
        rows.append({"key": key, "job": job, "args": args, "at": at, "handed": False, "created_at": now})

    waiting = bind.execute(
        sa.select(notice.c.id, notice.c.status, notice.c.send_at, notice.c.queued_at)
        .where(notice.c.status.in_(("scheduled", "sending")))
        .order_by(notice.c.id)
    ).all()
    for notice_id, status, send_at, queued_at in waiting:
        if status == "sending" and queued_at is not None:
            continue  # fanned out already: the sender has its messages
        at = send_at if status == "scheduled" and send_at is not None else now
        ask(f"notice:{notice_id}:send", "notice.send", _args(notice_id=notice_id), at)

    told = sa.select(audit.c.subject_id).where(
        audit.c.action == "consultation.outcome_sent", audit.c.subject_type == "consultation"
    )
    pending = bind.execute(
        sa.select(consultation.c.id, consultation.c.status, consultation.c.opens_at, consultation.c.closes_at)
        .where(
            sa.or_(
                consultation.c.status.in_(("draft", "scheduled", "open")),
                sa.and_(consultation.c.status == "closed", consultation.c.id.not_in(told)),
            )
        )
        .order_by(consultation.c.id)
    ).all()
    for consultation_id, status, opens_at, closes_at in pending:
        args = _args(consultation_id=consultation_id)
        if status == "closed":
            ask(f"consultation:{consultation_id}:outcome", "consultation.outcome", args, now)
            continue
        if status in ("draft", "scheduled"):
            ask(f"consultation:{consultation_id}:open", "consultation.open", args, opens_at)
        ask(f"consultation:{consultation_id}:close", "consultation.close", args, closes_at)
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    with op.batch_alter_table("schedule_request", schema=None) as batch_op:
        batch_op.drop_index("ix_schedule_request_key")
    op.drop_table("schedule_request")
