"""The kernel's tables. Every schema change goes through an Alembic migration in migrations/versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from community.db_types import UTCDateTime, enum_type
from community.roles import CommunityKind, Role


def _utc(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Community(SQLModel, table=True):
    __tablename__ = "community"
    # Ids are never reused, even on SQLite: the audit log refers to them after a row is gone.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    parent_id: int | None = Field(default=None, foreign_key="community.id", index=True)
    kind: CommunityKind = Field(sa_type=enum_type(CommunityKind))
    name: str = Field(max_length=200)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    default_language: str = Field(default="zh_Hans", max_length=16)
    created_at: datetime = Field(sa_column=_utc())


class Person(SQLModel, table=True):
    __tablename__ = "person"
    # Ids are never reused, even on SQLite: the audit log refers to them after a row is gone.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(sa_column=Column(Text, nullable=False))
    language: str | None = Field(default=None, max_length=16)  # the person's own choice, if they made one
    phone: str | None = Field(default=None, max_length=32)  # sensitive: staff only
    created_at: datetime = Field(sa_column=_utc())


class ChannelAccount(SQLModel, table=True):
    """One way a person reaches Linli: a Telegram user, a console identity, later other channels."""

    __tablename__ = "channel_account"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_channel_account_external"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    chat_id: str = Field(max_length=64)  # where to write to them privately
    language_code: str | None = Field(default=None, max_length=16)  # what their client reports
    username: str | None = Field(default=None, max_length=64)
    unreachable_since: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(sa_column=_utc())


class Household(SQLModel, table=True):
    __tablename__ = "household"
    __table_args__ = (UniqueConstraint("community_id", "label", name="uq_household_label"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    label: str = Field(max_length=100)  # as residents write it, e.g. "12号楼 3单元 501"
    building: str | None = Field(default=None, max_length=40)
    unit: str | None = Field(default=None, max_length=40)
    room: str | None = Field(default=None, max_length=40)
    resident_group: str | None = Field(default=None, max_length=40)  # 居民小组 / 村民小组, where the community has them


class Membership(SQLModel, table=True):
    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("person_id", "community_id", name="uq_membership_person_community"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    household_id: int | None = Field(default=None, foreign_key="household.id", index=True)
    joined_at: datetime = Field(sa_column=_utc())


class MembershipRole(SQLModel, table=True):
    __tablename__ = "membership_role"
    __table_args__ = (UniqueConstraint("membership_id", "role", name="uq_membership_role"),)

    id: int | None = Field(default=None, primary_key=True)
    membership_id: int = Field(foreign_key="membership.id", index=True)
    role: Role = Field(sa_type=enum_type(Role))


class Invitation(SQLModel, table=True):
    """Only a keyed hash of the code is kept (community.codes); the code itself is shown once, to its maker."""

    __tablename__ = "invitation"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    max_uses: int = Field(default=1)
    uses: int = Field(default=0)
    role: Role = Field(default=Role.RESIDENT, sa_type=enum_type(Role))
    household_id: int | None = Field(default=None, foreign_key="household.id")
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=_utc())
    expires_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class JoinRequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class JoinRequest(SQLModel, table=True):
    """A resident without a code asks to join; a community worker approves or rejects it in chat."""

    __tablename__ = "join_request"
    __table_args__ = (
        # One pending request per person and community, even when two arrive at the same instant.
        Index(
            "uq_join_request_pending",
            "person_id",
            "community_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    name: str = Field(sa_column=Column(Text, nullable=False))
    household_label: str = Field(sa_column=Column(Text, nullable=False))
    phone: str | None = Field(default=None, max_length=32)
    status: JoinRequestStatus = Field(
        default=JoinRequestStatus.PENDING, sa_type=enum_type(JoinRequestStatus), index=True
    )
    decided_by: int | None = Field(default=None, foreign_key="person.id")
    decided_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=_utc())


class CodeThrottle(SQLModel, table=True):
    """Wrong invitation codes per channel account, so codes cannot be guessed."""

    __tablename__ = "code_throttle"

    account_id: int = Field(foreign_key="channel_account.id", primary_key=True)
    failures: int = Field(default=0)
    first_failure_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    locked_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class AuditEntry(SQLModel, table=True):
    """Append-only and hash-chained: each entry's hash covers its content and the previous entry's hash.

    Person references are bare ids without foreign keys: after /forget the person row is gone and the
    entry no longer leads to anyone, while the chain stays verifiable."""

    __tablename__ = "audit_entry"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_utc())
    community_id: int | None = Field(default=None, index=True)
    actor_id: int | None = Field(default=None)
    action: str = Field(max_length=64)
    subject_type: str = Field(max_length=40)
    subject_id: int | None = Field(default=None)
    data: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class ConversationState(SQLModel, table=True):
    """What a person is in the middle of (a multi-step form), kept in the database so that a restart or a
    second process loses nothing."""

    __tablename__ = "conversation_state"
    __table_args__ = (Index("ix_conversation_state_updated", "updated_at"),)

    key: str = Field(primary_key=True, max_length=160)  # channel:chat_id:account
    name: str = Field(max_length=64)
    data: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    updated_at: datetime = Field(sa_column=_utc())


class ScheduleRequest(SQLModel, table=True):
    """A consequence a use case recorded in its transaction: "at ``at`` run the job ``job`` under ``key``", or,
    with ``at`` None, "forget the job under ``key``" (community.scheduling, UnitOfWork.schedule/unschedule).
    The relay in the jobs' process hands these rows to the scheduler in id order and marks them handed; a row
    that asked for a job stays until that job has run, so a start replays every job a crash may have lost,
    whether before its hand-over or while it ran. Not the scheduler's own table (scheduled_job), which it owns."""

    __tablename__ = "schedule_request"
    __table_args__ = (Index("ix_schedule_request_key", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    job: str = Field(max_length=100)
    args: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON of plain ints and strings
    at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))  # None: cancel the job under key
    handed: bool = Field(default=False)
    created_at: datetime = Field(sa_column=_utc())
