"""Moderating participants' statements, as use cases: submitting a statement (a moderated consultation's waits,
and every moderator is sent the moderation request) and deciding it (one decision however many moderators tap;
the author is told, and the other moderators' copies of the request change to say who decided and how).

Every message here goes to someone other than the person acting, so it goes through the outbox (uow.notify) in
the same transaction as the change: nothing is lost to a crash between the commit and the send, and a moderator
or author on another channel gets it from the process serving that channel."""

from __future__ import annotations

from community.communities import get_community
from community.models import Person
from community.notify import MessageRef, Recipient
from community.unit_of_work import UnitOfWork
from consultation import consultations, participation
from consultation.messages import StatementDecided, StatementModeration, moderation_topic
from consultation.models import Consultation, Statement, StatementRejection, StatementStatus
from consultation.participation import Decision


async def _moderation(
    uow: UnitOfWork, statement: Statement, consultation: Consultation, moderator_id: int | None = None
) -> StatementModeration:
    """The moderators' message; moderator_id: who just decided it."""
    assert statement.id is not None
    community = await get_community(uow, consultation.community_id)
    decided_by: str | None = None
    if moderator_id is not None:
        moderator = await uow.session.get(Person, moderator_id)
        decided_by = moderator.display_name if moderator is not None else None
    return StatementModeration(
        statement_id=statement.id,
        community=community.name,
        timezone=community.timezone,
        title=consultation.title,
        text=statement.text,
        status=statement.status,
        rejection_reason=statement.rejection_reason,
        decided_by=decided_by,
    )


async def submit_statement(uow: UnitOfWork, person_id: int, consultation_id: int, text: str) -> Statement:
    """A participant's own statement (consultations.submit_statement); where it waits for moderation, every
    moderator of the community (the author left out, should a moderator take part) is sent it with Approve /
    Reject, in their own language. The caller commits."""
    statement = await consultations.submit_statement(uow, person_id, consultation_id, text)
    if not consultations.awaits_moderation(statement) or statement.id is None:
        return statement
    consultation = await consultations.get_consultation(uow, statement.consultation_id)
    community = await get_community(uow, consultation.community_id)
    recipients = [
        Recipient.of(contact.account, contact.language, community.default_language)
        for contact in await participation.moderators(uow, consultation.community_id)
        if contact.account.person_id != person_id
    ]
    message = await _moderation(uow, statement, consultation)
    await uow.notify(recipients, message, topic=moderation_topic(statement.id))
    return statement


async def decide(
    uow: UnitOfWork,
    actor_id: int,
    statement_id: int,
    *,
    approve: bool,
    reason: StatementRejection | None = None,
    answered: MessageRef | None = None,
) -> Decision:
    """One moderator's decision on a waiting statement (participation.decide: permission, state, audit). When
    this call decided it, the author is told, and every other copy of the moderation request changes to say who
    decided and how; ``answered``: the copy the moderator tapped, which the front end changes itself. The
    caller commits."""
    decision = await participation.decide(uow, actor_id, statement_id, approve=approve, reason=reason)
    if not decision.decided_now:
        return decision
    statement, consultation = decision.statement, decision.consultation
    assert statement.id is not None
    await uow.edit_notified(
        moderation_topic(statement.id),
        await _moderation(uow, statement, consultation, actor_id),
        skip=(answered,) if answered is not None else (),
    )
    author = await participation.author_contact(uow, statement.id)
    if author is not None:
        community = await get_community(uow, consultation.community_id)
        told = StatementDecided(
            title=consultation.title,
            text=statement.text,
            approved=statement.status == StatementStatus.APPROVED,
            reason=statement.rejection_reason,
            timezone=community.timezone,
        )
        await uow.notify(
            [Recipient.of(account, author.language, community.default_language) for account in author.accounts], told
        )
    return decision
