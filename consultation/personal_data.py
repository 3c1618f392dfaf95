"""The consultations' personal-data provider (community.features.PersonalDataProvider): what /privacy shows a
person of their part in consultations, and what /forget does with it (consultation.erasure).

Only the person's own link from themselves to their pseudonyms (ParticipantLink) is read here: what they voted
and wrote is theirs to see, as the consultation already shows them ("my votes"); no one else's data is."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.sql.expression import Select, SelectOfScalar

from community.unit_of_work import UnitOfWork
from consultation.consultations import VoteValue
from consultation.erasure import withdraw_open_votes
from consultation.models import Consultation, ConsultationStatus, ParticipantLink, Statement, StatementStatus, Vote


@dataclass(frozen=True, slots=True)
class VoteData:
    statement: str
    value: int  # +1 agree, -1 disagree, 0 pass
    at: datetime


@dataclass(frozen=True, slots=True)
class StatementData:
    text: str
    status: StatementStatus
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ParticipationData:
    """The person's part in one consultation: under a pseudonym of its own, linked to them until they erase."""

    title: str
    status: ConsultationStatus
    closes_at: datetime
    votes: tuple[VoteData, ...]
    statements: tuple[StatementData, ...]

    @property
    def open(self) -> bool:
        return self.status != ConsultationStatus.CLOSED


@dataclass(frozen=True, slots=True)
class ConsultationPersonalData:
    participations: tuple[ParticipationData, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "participations": [
                {
                    "consultation": p.title,
                    "status": p.status.value,
                    "closes_at": p.closes_at.isoformat(),
                    "votes": [
                        {"statement": v.statement, "vote": VoteValue(v.value).name.lower(), "at": v.at.isoformat()}
                        for v in p.votes
                    ],
                    "statements": [
                        {"text": s.text, "status": s.status.value, "created_at": s.created_at.isoformat()}
                        for s in p.statements
                    ],
                }
                for p in self.participations
            ]
        }


@dataclass(frozen=True, slots=True)
class _Statements:
    """The reads of collect, built once: /privacy asks them every time, and building a select cost about as much
    as SQLite took to run it."""

    links: Select[int, Consultation]
    votes: Select[Vote, str]
    statements: SelectOfScalar[Statement]


@functools.cache
def _statements() -> _Statements:
    return _Statements(
        links=select(ParticipantLink.participant_id, Consultation)
        .join(Consultation, col(Consultation.id) == col(ParticipantLink.consultation_id))
        .where(col(ParticipantLink.person_id) == bindparam("person_id"))
        .order_by(col(Consultation.opens_at), col(Consultation.id)),
        votes=select(Vote, Statement.text)
        .join(Statement, col(Statement.id) == col(Vote.statement_id))
        .where(col(Vote.participant_id).in_(bindparam("participant_ids", expanding=True)))
        .order_by(col(Vote.at), col(Vote.id)),
        statements=select(Statement)
        .where(col(Statement.author_id).in_(bindparam("participant_ids", expanding=True)))
        .order_by(col(Statement.id)),
    )


class ConsultationsProvider:
    """Lists the consultations a person took part in, with their votes and statements; erases as
    consultation.erasure says (votes and unseen statements in open consultations withdrawn, the rest unlinked)."""

    key = "consultations"

    async def collect(self, uow: UnitOfWork, person_id: int) -> ConsultationPersonalData | None:
        session = uow.session
        reads = _statements()
        links = (await session.exec(reads.links, params={"person_id": person_id})).all()
        if not links:
            return None
        participant_ids = [participant_id for participant_id, _ in links]
        votes: dict[int, list[VoteData]] = defaultdict(list)
        ids = {"participant_ids": participant_ids}
        vote_rows = await session.exec(reads.votes, params=ids)
        for vote, text in vote_rows.all():
            votes[vote.participant_id].append(VoteData(text, vote.value, vote.at))
        statements: dict[int, list[StatementData]] = defaultdict(list)
        statement_rows = await session.exec(reads.statements, params=ids)
        for statement in statement_rows.all():
            assert statement.author_id is not None
            statements[statement.author_id].append(
                StatementData(statement.text, StatementStatus(statement.status), statement.created_at)
            )
        return ConsultationPersonalData(
            tuple(
                ParticipationData(
                    title=consultation.title,
                    status=ConsultationStatus(consultation.status),
                    closes_at=consultation.closes_at,
                    votes=tuple(votes[participant_id]),
                    statements=tuple(statements[participant_id]),
                )
                for participant_id, consultation in links
            )
        )

    async def erase(self, uow: UnitOfWork, person_id: int) -> None:
        await withdraw_open_votes(uow, person_id)
