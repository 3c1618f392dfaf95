"""What a consultation tells people other than the one in the chat, as notifications (community.notify): the
invitation when it opens, the outcome when it closes, a statement waiting for moderation (to every moderator),
and the decision (to its author). Plain values; the bot ring renders them in each reader's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from community.communities import get_community
from community.notice_messages import attachment_of
from community.notice_models import AttachmentKind
from community.notify import Recipient
from community.unit_of_work import UnitOfWork
from consultation import reach
from consultation.models import Consultation, StatementRejection, StatementStatus
from i18n.translator import DEFAULT_TIMEZONE


@dataclass(frozen=True, slots=True)
class ConsultationLook:
    """What an invitation shows, from a consultation or from the composer's form before it exists."""

    consultation_id: int
    community: str
    title: str
    background: str
    closes_at: datetime
    allow_statements: bool
    attachment_kind: AttachmentKind | None = None
    attachment_name: str | None = None

    @classmethod
    def of(cls, consultation: Consultation, community: str) -> ConsultationLook:
        assert consultation.id is not None
        return cls(
            consultation_id=consultation.id,
            community=community,
            title=consultation.title,
            background=consultation.background,
            closes_at=consultation.closes_at,
            allow_statements=consultation.allow_statements,
            attachment_kind=consultation.attachment_kind,
            attachment_name=consultation.attachment_name,
        )


@dataclass(frozen=True, slots=True)
class ConsultationInvitation:
    look: ConsultationLook
    timezone: str  # the community's, for the closing time


@dataclass(frozen=True, slots=True)
class ConsultationOutcome:
    """What a participant is told at the close; computed once, rendered per language."""

    community: str
    title: str
    participants: int
    voters: int
    votes: int
    groups: int
    consensus: tuple[str, ...]  # statements most agreed on, best first
    divisive: str | None  # the most divisive statement
    withheld_below: int | None = None  # k, when fewer than k voted: no finding of the opinion map is told
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True, slots=True)
class StatementModeration:
    """A statement as its moderators see it: waiting (with Approve / Reject), or decided, by whom and how."""

    statement_id: int
    community: str
    timezone: str
    title: str  # the consultation's
    text: str
    status: StatementStatus
    rejection_reason: StatementRejection | None = None
    decided_by: str | None = None  # the moderator's name, once decided


@dataclass(frozen=True, slots=True)
class StatementDecided:
    """To a statement's author: published, or not and why."""

    title: str
    text: str
    approved: bool
    reason: StatementRejection | None = None
    timezone: str = DEFAULT_TIMEZONE


def moderation_topic(statement_id: int) -> str:
    """The moderators' copies of one moderation request share this topic: once one decides, the others change."""
    return f"statement:{statement_id}:moderation"


def reached(people: list[reach.Reached]) -> list[Recipient]:
    return [Recipient(p.person_id, p.account_id, p.channel, p.chat_id, p.language) for p in people]


async def invite(uow: UnitOfWork, consultation: Consultation) -> int:
    """Queue the invitation for everyone eligible in scope, one row per reachable account; the caller commits.
    Call it only when this transaction opened the consultation."""
    assert consultation.id is not None
    community = await get_community(uow, consultation.community_id)
    invitation = ConsultationInvitation(ConsultationLook.of(consultation, community.name), community.timezone)
    attachment = attachment_of(
        consultation.attachment_kind,
        consultation.attachment_channel,
        consultation.attachment_ref,
        consultation.attachment_name,
    )
    return await uow.notify(reached(await reach.invitees(uow, consultation)), invitation, attachment=attachment)
