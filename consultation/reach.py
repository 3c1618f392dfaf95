"""Who a consultation reaches: the eligible people in its scope (invited when it opens), and its participants
(told the outcome when it closes), each through every channel account that can still be reached; and the record
that the outcome went out, so that it goes out once.

Who is eligible is the kernel's Criteria (community.scope): its SQL filter here, so inviting ten thousand residents
is one SELECT; its single-person check in consultations.is_eligible, from the same definition.

An invitation is not a notice: notice mutes and the daily digest do not hold it back, since a consultation asks
for an answer before its closing time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, FromClause, Select, func, outerjoin
from sqlalchemy import select as sa_select
from sqlalchemy.orm import Mapped
from sqlmodel import col, select

from community import audit
from community.communities import get_community
from community.models import AuditEntry, ChannelAccount, Household, Membership, Person
from community.scope import Criteria, Eligibility, Scope
from community.unit_of_work import UnitOfWork
from consultation.models import Consultation, Participant, ParticipantLink, Statement
from i18n import negotiate_language

_AccountRows = Select[int, int | None, str, str, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Reached:
    """One message to one person through one of their channel accounts."""

    person_id: int
    account_id: int
    channel: str
    chat_id: str
    language: str  # the language to write to them in


def criteria(consultation: Consultation) -> Criteria:
    """Who may take part in the consultation: its community, its scope (the audience column), its eligibility."""
    return Criteria(consultation.community_id, Scope.from_json(consultation.audience), consultation.eligibility)


async def eligible_people(uow: UnitOfWork, consultation: Consultation) -> list[int]:
    """The person ids of everyone who may take part, in id order (whether reachable or not)."""
    statement = criteria(consultation).members().order_by(col(Membership.person_id))
    return [int(person_id) for person_id in (await uow.session.exec(statement)).scalars()]  # type: ignore[call-overload]


async def count_eligible(uow: UnitOfWork, community_id: int, audience: Scope, eligibility: Eligibility) -> int:
    """How many people a consultation with this scope would invite now (people, not messages): the preview's
    number."""
    statement = (
        sa_select(func.count(func.distinct(col(Membership.person_id))))
        .select_from(Membership)
        .outerjoin(Household, col(Household.id) == col(Membership.household_id))
        .join(ChannelAccount, col(ChannelAccount.person_id) == col(Membership.person_id))
        .where(
            *Criteria(community_id, audience, eligibility).filters(),
            col(ChannelAccount.unreachable_since).is_(None),
        )
    )
    return int((await uow.session.exec(statement)).one()[0])  # type: ignore[call-overload]


async def _reached(uow: UnitOfWork, community_id: int, statement: _AccountRows) -> list[Reached]:
    default = (await get_community(uow, community_id)).default_language
    rows = (await uow.session.exec(statement)).all()  # type: ignore[call-overload]
    return [
        Reached(
            person_id=int(person_id),
            account_id=int(account_id),
            channel=channel,
            chat_id=chat_id,
            language=negotiate_language(own, client, default),
        )
        for person_id, account_id, channel, chat_id, own, client in rows
    ]


def _accounts(person_id: Mapped[int], source: FromClause, *where: ColumnElement[bool]) -> _AccountRows:
    """The reachable channel accounts of the people ``person_id`` names in ``source``, by person and account."""
    return (
        sa_select(
            person_id,
            col(ChannelAccount.id),
            col(ChannelAccount.channel),
            col(ChannelAccount.chat_id),
            col(Person.language),
            col(ChannelAccount.language_code),
        )
        .select_from(source)
        .join(Person, col(Person.id) == person_id)
        .join(ChannelAccount, col(ChannelAccount.person_id) == person_id)
        .where(*where, col(ChannelAccount.unreachable_since).is_(None))
        .order_by(person_id, col(ChannelAccount.id))
    )


async def invitees(uow: UnitOfWork, consultation: Consultation) -> list[Reached]:
    """Everyone eligible in the consultation's scope, one entry per reachable channel account, by person and
    account: whom the opening invites."""
    source = outerjoin(Membership, Household, col(Household.id) == col(Membership.household_id))
    statement = _accounts(col(Membership.person_id), source, *criteria(consultation).filters())
    return await _reached(uow, consultation.community_id, statement)


async def participants_reached(uow: UnitOfWork, consultation: Consultation) -> list[Reached]:
    """Everyone who took part (has a pseudonym, found through ParticipantLink: who they are, not what they
    voted), one entry per reachable channel account: whom the close tells the outcome."""
    statement = _accounts(
        col(ParticipantLink.person_id),
        ParticipantLink.__table__,  # type: ignore[attr-defined]
        col(ParticipantLink.consultation_id) == consultation.id,
    )
    return await _reached(uow, consultation.community_id, statement)


async def own_pseudonyms(uow: UnitOfWork, consultation_id: int) -> dict[int, str]:
    """Each participant's own pseudonym, by person: what places a person's own "you are here" on the picture of
    the map that they alone get (bot.consultations.pictures). ParticipantLink is read for nothing else here, and
    this never leaves the worker that draws the pictures. Every participant at once, not a list of people: 20,000
    ids would not fit in one statement's parameters on SQLite."""
    rows = (
        await uow.session.exec(
            sa_select(col(ParticipantLink.person_id), col(Participant.pseudonym))
            .join(Participant, col(Participant.id) == col(ParticipantLink.participant_id))
            .where(col(ParticipantLink.consultation_id) == consultation_id)
        )  # type: ignore[call-overload]
    ).all()
    return {int(person_id): pseudonym for person_id, pseudonym in rows}


# --- the outcome message, once ----------------------------------------------------------------------------------

OUTCOME_SENT = "consultation.outcome_sent"


async def lock_consultation(uow: UnitOfWork, consultation_id: int) -> Consultation | None:
    """The consultation, its row locked until the transaction ends (PostgreSQL; SQLite has a single writer), so
    that two processes deciding whether to send its outcome take turns."""
    return (
        await uow.session.exec(select(Consultation).where(col(Consultation.id) == consultation_id).with_for_update())
    ).first()


async def outcome_sent(uow: UnitOfWork, consultation_id: int) -> bool:
    """Whether participants were told the outcome already: the audit log holds it, with the close it follows."""
    found = (
        await uow.session.exec(
            select(AuditEntry.id).where(
                col(AuditEntry.action) == OUTCOME_SENT,
                col(AuditEntry.subject_type) == "consultation",
                col(AuditEntry.subject_id) == consultation_id,
            )
        )
    ).first()
    return found is not None


async def outcome_sent_at(uow: UnitOfWork, consultation_ids: Sequence[int]) -> dict[int, datetime]:
    """When each of these consultations' outcome was queued, for those whose was: how long its pictures are kept."""
    if not consultation_ids:
        return {}
    rows = (
        await uow.session.exec(
            select(AuditEntry.subject_id, AuditEntry.at).where(
                col(AuditEntry.action) == OUTCOME_SENT,
                col(AuditEntry.subject_type) == "consultation",
                col(AuditEntry.subject_id).in_(sorted(set(consultation_ids))),
            )
        )
    ).all()
    return {int(subject_id): at for subject_id, at in rows if subject_id is not None}


async def mark_outcome_sent(uow: UnitOfWork, consultation: Consultation, messages: int) -> None:
    """Record, in the transaction that queues the outcome messages, that they were queued."""
    await audit.record(
        uow,
        action=OUTCOME_SENT,
        subject_type="consultation",
        subject_id=consultation.id,
        community_id=consultation.community_id,
        data={"messages": messages},
    )


async def statement_texts(uow: UnitOfWork, statement_ids: Sequence[int]) -> dict[int, str]:
    if not statement_ids:
        return {}
    rows = (
        await uow.session.exec(select(Statement.id, Statement.text).where(col(Statement.id).in_(statement_ids)))
    ).all()
    return {int(sid): text for sid, text in rows if sid is not None}
