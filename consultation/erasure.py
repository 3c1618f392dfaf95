"""What /forget does to a person's part in consultations: votes in consultations still open are withdrawn;
votes in closed ones stay in the counted outcome, under a pseudonym that leads to no one.

Why withdrawn and not kept: a person who erases their data and joins again (a multi-use invitation, a new code)
is a new person to Linli, with a new pseudonym. Had their votes stayed, every round of forget-and-rejoin would
add one more vote on each statement. Withdrawn, they count once however often that happens, and nothing is kept
that could tie the old votes to the account that comes back (a keyed hash of the chat account would, for
whoever holds the site key). Told to a resident: "your votes in consultations still open are withdrawn; you
can vote again if you rejoin. Votes in closed consultations stay in their results, linked to no one."

Statements the person wrote, in a consultation still open: those no participant has been shown (waiting for a
moderator, or rejected, which a moderator could still approve) are withdrawn with the votes, since publishing a
person's words after they asked to be erased would go against their choice, and nothing of anyone else rests
on them. Approved ones stay: other residents have voted on them, and the outcome counts those votes. In a closed
consultation every statement stays as the outcome counted it.

The same rule keeps one voice per household where a consultation counts households: a representative who leaves
takes the household's votes with them, and the next representative votes afresh.

"Still open" is what a vote can still change: not closed, and the closing time not yet come (a close job running
late must find the outcome as it stood at the closing time). Statements that stay keep their author's pseudonym,
which then leads to no one; a pseudonym stays only where it wrote such a statement."""

from __future__ import annotations

from sqlalchemy import delete, exists
from sqlmodel import col, select

from community.unit_of_work import UnitOfWork
from consultation.models import (
    Consultation,
    ConsultationStatus,
    Participant,
    ParticipantLink,
    Statement,
    StatementStatus,
    Vote,
)


async def withdraw_open_votes(uow: UnitOfWork, person_id: int) -> None:
    """Withdraw the person's votes in every consultation still open, and the statements of theirs no participant
    has been shown there (see the module's text), and drop their pseudonyms there unless an approved statement of
    theirs carries it. Run through the consultations' personal-data provider (consultation.personal_data) by
    community.privacy.forget before the person row goes (the link from person to pseudonym goes with it), in the
    same transaction."""
    now = uow.clock.now()
    participant_ids = [
        pid
        for pid in (
            await uow.session.exec(
                select(ParticipantLink.participant_id)
                .join(Consultation, col(Consultation.id) == col(ParticipantLink.consultation_id))
                .where(
                    col(ParticipantLink.person_id) == person_id,
                    col(Consultation.status) != ConsultationStatus.CLOSED,
                    col(Consultation.closes_at) > now,
                )
            )
        ).all()
    ]
    if not participant_ids:
        return
    session = uow.session
    unseen = (
        await session.exec(
            select(Statement.id).where(
                col(Statement.author_id).in_(participant_ids), col(Statement.status) != StatementStatus.APPROVED
            )
        )
    ).all()
    if unseen:
        # Votes on a rejected statement (approved once, then rejected) count nowhere; they go with it.
        await session.exec(delete(Vote).where(col(Vote.statement_id).in_(unseen)))
        await session.exec(delete(Statement).where(col(Statement.id).in_(unseen)))
    await session.exec(delete(Vote).where(col(Vote.participant_id).in_(participant_ids)))
    authored = exists().where(col(Statement.author_id) == col(Participant.id))
    unused = select(Participant.id).where(col(Participant.id).in_(participant_ids), ~authored).scalar_subquery()
    await session.exec(delete(ParticipantLink).where(col(ParticipantLink.participant_id).in_(unused)))
    await session.exec(delete(Participant).where(col(Participant.id).in_(participant_ids), ~authored))
