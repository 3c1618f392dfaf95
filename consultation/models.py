"""Tables of consultations (议事协商): the matter, its statements, its participants and their votes.

Votes carry no person: a participant is a random pseudonym of its own per consultation, and the one link from a
person to their pseudonym is kept apart (ParticipantLink), so the votes and every export hold pseudonyms only.
Forgetting a person drops their link with them (ON DELETE CASCADE); their votes in consultations still open are
withdrawn first (consultation.erasure), those in closed ones stay, leading to no one."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Float, ForeignKey, Integer, SmallInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from community.db_types import UTCDateTime, enum_type

# Who may take part is the kernel's (community.scope); a consultation stores its choice in Consultation.eligibility.
from community.eligibility import Eligibility as Eligibility  # re-exported: the tables and services use it from here
from community.notice_models import AttachmentKind


def _utc(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class ConsultationStatus(StrEnum):
    DRAFT = "draft"  # being composed
    SCHEDULED = "scheduled"  # confirmed, waits for opens_at
    OPEN = "open"  # taking statements and votes
    CLOSED = "closed"  # over: the outcome is computed from what is stored


class StatementStatus(StrEnum):
    PENDING = "pending"  # waits for a moderator
    APPROVED = "approved"  # shown to participants and voted on
    REJECTED = "rejected"


class StatementRejection(StrEnum):
    """The reasons a moderator can pick with one tap; the author is told the chosen one."""

    OFF_TOPIC = "off_topic"
    OFFENSIVE = "offensive"
    PERSONAL_DATA = "personal_data"
    UNCLEAR = "unclear"
    REPEATS_ANOTHER = "repeats_another"
    OTHER = "other"


class Consultation(SQLModel, table=True):
    __tablename__ = "consultation"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    title: str = Field(max_length=200)
    background: str = Field(sa_column=Column(Text, nullable=False))  # plain text, escaped on render
    language: str = Field(max_length=16)  # the language title and background are written in
    attachment_kind: AttachmentKind | None = Field(default=None, sa_type=enum_type(AttachmentKind), nullable=True)
    attachment_channel: str | None = Field(default=None, max_length=20)  # whose file reference attachment_ref is
    attachment_ref: str | None = Field(default=None, max_length=255)
    attachment_name: str | None = Field(default=None, max_length=255)
    # Who it is for, as community.scope.Scope's canonical JSON; "{}" is the whole community.
    audience: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    eligibility: Eligibility = Field(default=Eligibility.RESIDENTS, sa_type=enum_type(Eligibility))
    opens_at: datetime = Field(sa_column=_utc())
    closes_at: datetime = Field(sa_column=_utc())
    allow_statements: bool = Field(default=True)  # participants may add statements of their own
    moderated: bool = Field(default=True)  # participants' statements wait for a moderator
    status: ConsultationStatus = Field(
        default=ConsultationStatus.DRAFT, sa_type=enum_type(ConsultationStatus), index=True
    )
    created_by: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("person.id", ondelete="SET NULL"), nullable=True)
    )
    created_at: datetime = Field(sa_column=_utc())
    opened_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # When a vote last asked for the opinion map that sets the statements' priorities (None: never). A vote
    # claims the refresh with a conditional update of this column, so that one request goes out per interval
    # (consultations.MAP_REFRESH) whatever the number of votes at once.
    map_requested_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class Participant(SQLModel, table=True):
    """A person's pseudonym in one consultation: random, and different in every consultation."""

    __tablename__ = "consultation_participant"
    __table_args__ = (
        UniqueConstraint("consultation_id", "pseudonym", name="uq_consultation_participant_pseudonym"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    pseudonym: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=_utc())


class ParticipantLink(SQLModel, table=True):
    """Which person a pseudonym is: read only to find a person's own pseudonym and to tell an author how their
    statement was moderated, never for votes or exports."""

    __tablename__ = "consultation_participant_link"
    __table_args__ = (
        UniqueConstraint("consultation_id", "person_id", name="uq_consultation_participant_link_person"),
        UniqueConstraint("participant_id", name="uq_consultation_participant_link_participant"),
    )

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    person_id: int = Field(
        sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    participant_id: int = Field(foreign_key="consultation_participant.id")


class Statement(SQLModel, table=True):
    __tablename__ = "consultation_statement"
    __table_args__ = (
        # Exact duplicates (after normalising blanks and case) are refused by the database as well.
        UniqueConstraint("consultation_id", "normalized", name="uq_consultation_statement_text"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))  # as written, stripped: plain text, escaped on render
    normalized: str = Field(sa_column=Column(Text, nullable=False))
    # The author's pseudonym; None for a statement seeded by staff.
    author_id: int | None = Field(default=None, foreign_key="consultation_participant.id", index=True)
    status: StatementStatus = Field(default=StatementStatus.PENDING, sa_type=enum_type(StatementStatus))
    rejection_reason: StatementRejection | None = Field(
        default=None, sa_type=enum_type(StatementRejection), nullable=True
    )
    created_at: datetime = Field(sa_column=_utc())
    moderated_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # Polis's importance from the last opinion map (how much a vote on it tells groups apart), which orders the
    # statements shown next; kept on the row so that choosing the next card stays one query. None: approved
    # after the last map, or no map yet.
    priority: float | None = Field(default=None, sa_column=Column(Float, nullable=True))


class Vote(SQLModel, table=True):
    """One participant's current vote on one statement: +1 agree, -1 disagree, 0 pass. Changing it updates the
    row; the unique constraint keeps two taps at once from counting twice."""

    __tablename__ = "consultation_vote"
    __table_args__ = (UniqueConstraint("participant_id", "statement_id", name="uq_consultation_vote"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="consultation_participant.id")
    statement_id: int = Field(foreign_key="consultation_statement.id", index=True)
    value: int = Field(sa_column=Column(SmallInteger, nullable=False))
    at: datetime = Field(sa_column=_utc())


class VoteTallySnapshot(SQLModel, table=True):
    """A consultation's votes as last counted off the conversation, by the jobs' worker (bot.consultations.jobs:
    each opinion map refresh while open, and the outcome at the close). The staff's figures screen shows it, "as
    of" counted_at, for a consultation too large to count live inside a resident's turn (consultations.
    LIVE_TALLY_UP_TO). Counts only, as in the votes: nobody's votes; how they voted is withheld on reading while
    fewer than k voted."""

    __tablename__ = "consultation_vote_tally"

    consultation_id: int = Field(
        sa_column=Column(Integer, ForeignKey("consultation.id", ondelete="CASCADE"), primary_key=True)
    )
    voters: int
    agree: int
    disagree: int
    passed: int
    counted_at: datetime = Field(sa_column=_utc())


class MapMemory(SQLModel, table=True):
    """What the opinion map of a consultation remembers from its last computation (consultation.map_memory): the
    next refresh starts from it, as Pol.is's updates do, and the exports of a closed consultation show the groups
    its outcome told. JSON of pseudonyms and cluster numbers: nobody's votes, no person."""

    __tablename__ = "consultation_map_memory"

    consultation_id: int = Field(
        sa_column=Column(Integer, ForeignKey("consultation.id", ondelete="CASCADE"), primary_key=True)
    )
    memory: str = Field(sa_column=Column(Text, nullable=False))
    computed_at: datetime = Field(sa_column=_utc())
