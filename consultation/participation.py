"""Taking part and moderating, as a chat needs it: what a participant's next card shows, their own votes, who
moderates a community's consultations, one-tap decisions that a second moderator cannot overturn by accident,
how to reach a statement's author, and the consultations a worker oversees.

The rules themselves stay in consultation.consultations (who may take part, when votes count, moderation);
this module composes them and answers the questions a front end asks on every tap, in few queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import col, select

from community.communities import effective_roles
from community.models import ChannelAccount, Person
from community.permissions import allows
from community.roles import Action
from community.unit_of_work import UnitOfWork
from community.verification import StaffContact, staff_for
from consultation.consultations import (
    VoteValue,
    author_of,
    awaits_moderation,
    get_consultation,
    get_statement,
    moderate,
    next_up,
    participate,
    record_vote,
    require_figures_shown,
    takes_votes,
)
from consultation.errors import (
    ConsultationNotAllowed,
    FiguresWithheld,
    MapOnlyWhileOpen,
    MapWithheld,
    StatementNotFound,
    StatementNotVotable,
    StatementsNotAllowed,
)
from consultation.models import (
    Consultation,
    ConsultationStatus,
    Statement,
    StatementRejection,
    StatementStatus,
    Vote,
)

# How long a closed consultation stays in a worker's overview.
RECENTLY_CLOSED = timedelta(days=30)
OVERVIEW_LIMIT = 10  # consultations per community in the overview


@dataclass(frozen=True, slots=True)
class Header:
    """What a card shows of its consultation."""

    id: int
    title: str
    allow_statements: bool

    @classmethod
    def of(cls, consultation: Consultation) -> Header:
        assert consultation.id is not None
        return cls(consultation.id, consultation.title, consultation.allow_statements)


@dataclass(frozen=True, slots=True)
class Card:
    """What a participant is shown: a statement to vote on (None: nothing left) and how many are left."""

    consultation: Header
    participant_id: int
    statement_id: int | None
    text: str | None
    left: int  # approved statements without the participant's vote (the shown one included when unvoted)
    current: VoteValue | None = None  # the participant's vote on the shown statement, when they review it


@dataclass(frozen=True, slots=True)
class Cast:
    """A vote as recorded: previous is what the participant had chosen on that statement before, if anything,
    so a repeated tap on an old message can be told apart from a new vote; next is their next card. map_due:
    this vote took the interval's request for the opinion map that orders the statements (RecordedVote.map_due);
    the front end asks for the map job after its commit."""

    previous: VoteValue | None
    next: Card
    map_due: bool = False


async def take_part(uow: UnitOfWork, person_id: int, consultation_id: int) -> Card:
    """Open a consultation to take part: the person's pseudonym (made on first use; refused when the
    consultation is not open or the person is not eligible) and their next statement."""
    consultation = await get_consultation(uow, consultation_id)
    participant = await participate(uow, person_id, consultation_id)
    assert participant.id is not None
    return await next_card(uow, Header.of(consultation), participant.id)


async def next_card(uow: UnitOfWork, header: Header, participant_id: int) -> Card:
    up = await next_up(uow, participant_id, header.id)
    return Card(header, participant_id, up.statement_id, up.text, up.left)


async def cast(uow: UnitOfWork, person_id: int, statement_id: int, value: VoteValue) -> Cast:
    """Record or change a vote (consultation.consultations.vote: only while open, on approved statements), and
    the participant's next card: three statements in all, as it runs on every tap."""
    recorded = await record_vote(uow, person_id, statement_id, value)
    header = Header(recorded.consultation_id, recorded.title, recorded.allow_statements)
    card = await next_card(uow, header, recorded.participant_id)
    return Cast(previous=recorded.previous, next=card, map_due=recorded.map_due)


async def review(uow: UnitOfWork, person_id: int, statement_id: int) -> tuple[Card, Statement]:
    """A statement's card again, with the person's current vote on it, to change it (possible until the close).
    Refused (StatementNotVotable) for a statement participants do not vote on: waiting for a moderator or
    rejected, whose text is not theirs to see."""
    statement = await get_statement(uow, statement_id)
    consultation = await get_consultation(uow, statement.consultation_id)
    participant = await participate(uow, person_id, statement.consultation_id)
    assert participant.id is not None and consultation.id is not None
    if not takes_votes(statement):
        raise StatementNotVotable()
    current = (
        await uow.session.exec(
            select(Vote.value).where(Vote.participant_id == participant.id, Vote.statement_id == statement_id)
        )
    ).first()
    up = await next_up(uow, participant.id, consultation.id)
    card = Card(
        consultation=Header.of(consultation),
        participant_id=participant.id,
        statement_id=statement_id,
        text=statement.text,
        left=up.left,
        current=VoteValue(current) if current is not None else None,
    )
    return card, statement


async def my_votes(uow: UnitOfWork, person_id: int, consultation_id: int) -> list[tuple[Statement, VoteValue]]:
    """The approved statements the person voted on, oldest statement first, each with their current choice.
    Refused, like voting, once the consultation is not open (or for someone not eligible)."""
    participant = await participate(uow, person_id, consultation_id)
    rows = (
        await uow.session.exec(
            select(Statement, Vote.value)
            .join(Vote, col(Vote.statement_id) == col(Statement.id))
            .where(Vote.participant_id == participant.id, Statement.status == StatementStatus.APPROVED)
            .order_by(col(Statement.id))
        )
    ).all()
    return [(statement, VoteValue(value)) for statement, value in rows]


async def may_add_statement(uow: UnitOfWork, person_id: int, consultation_id: int) -> Consultation:
    """Before asking for a statement: the consultation is open, the person may take part, it takes statements."""
    consultation = await get_consultation(uow, consultation_id)
    await participate(uow, person_id, consultation_id)
    if not consultation.allow_statements:
        raise StatementsNotAllowed()
    return consultation


# --- moderation --------------------------------------------------------------------------------------------------


async def moderators(uow: UnitOfWork, community_id: int) -> list[StaffContact]:
    """Everyone who may moderate the community's consultations (Action.RUN_CONSULTATION): its own staff and
    committee, and the street administrators of the streets or townships above it; by account id."""
    return await staff_for(uow, community_id, Action.RUN_CONSULTATION)


@dataclass(frozen=True, slots=True)
class Decision:
    statement: Statement
    consultation: Consultation
    decided_now: bool  # False: someone had decided it already, and this tap changed nothing


async def decide(
    uow: UnitOfWork, actor_id: int, statement_id: int, *, approve: bool, reason: StatementRejection | None = None
) -> Decision:
    """One tap under a statement waiting for moderation. Only a pending statement is decided: of two moderators
    tapping the same message, the second finds the first one's decision and changes nothing (a change of mind
    goes through consultation.consultations.moderate directly). The row is locked on PostgreSQL so that two
    taps at once decide once; SQLite's units of work already take turns."""
    statement = (
        await uow.session.exec(
            select(Statement)
            .where(col(Statement.id) == statement_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if statement is None:
        raise StatementNotFound()
    consultation = await get_consultation(uow, statement.consultation_id)
    await require_runner(uow, actor_id, consultation)
    if not awaits_moderation(statement):
        return Decision(statement, consultation, False)
    decided = await moderate(uow, actor_id, statement_id, approve=approve, reason=reason)
    return Decision(decided, consultation, True)


@dataclass(frozen=True, slots=True)
class Author:
    """How to tell a statement's author how moderation went: their accounts and their own language choice."""

    accounts: list[ChannelAccount]
    language: str | None


async def author_contact(uow: UnitOfWork, statement_id: int) -> Author | None:
    """None for statements staff seeded and for authors who erased their data."""
    person_id = await author_of(uow, statement_id)
    if person_id is None:
        return None
    person = await uow.session.get(Person, person_id)
    if person is None:
        return None
    accounts = (
        await uow.session.exec(
            select(ChannelAccount).where(ChannelAccount.person_id == person_id).order_by(col(ChannelAccount.id))
        )
    ).all()
    return Author(accounts=list(accounts), language=person.language)


# --- the workers' overview ---------------------------------------------------------------------------------------


async def require_runner(uow: UnitOfWork, actor_id: int, consultation: Consultation) -> None:
    if not allows(await effective_roles(uow, actor_id, consultation.community_id), Action.RUN_CONSULTATION):
        raise ConsultationNotAllowed()


async def consultation_for_runner(uow: UnitOfWork, actor_id: int, consultation_id: int) -> Consultation:
    """A consultation the person runs (Action.RUN_CONSULTATION in its community), else refused."""
    consultation = await get_consultation(uow, consultation_id)
    await require_runner(uow, actor_id, consultation)
    return consultation


async def require_current_map(uow: UnitOfWork, actor_id: int, consultation_id: int) -> Consultation:
    """An open consultation whose current opinion map the person may have (committee and staff of its community:
    RUN_CONSULTATION), once at least k have voted (MapWithheld otherwise). Asked when the map is asked for and
    again when the jobs' process draws it: a role may be taken away, or the consultation closed, in between."""
    consultation = await consultation_for_runner(uow, actor_id, consultation_id)
    if consultation.status is not ConsultationStatus.OPEN:
        raise MapOnlyWhileOpen()
    try:
        await require_figures_shown(uow, consultation_id)
    except FiguresWithheld as err:
        raise MapWithheld(voters=int(err.params["voters"]), k=int(err.params["k"])) from err
    return consultation


async def overview(uow: UnitOfWork, community_id: int, now: datetime) -> list[Consultation]:
    """A community's consultations a worker follows: open ones (closing soonest first), then scheduled ones
    (opening soonest first), then those closed in the last RECENTLY_CLOSED (latest first)."""
    found = (
        await uow.session.exec(
            select(Consultation).where(
                Consultation.community_id == community_id,
                or_(
                    col(Consultation.status) != ConsultationStatus.CLOSED,
                    col(Consultation.closed_at) >= now - RECENTLY_CLOSED,
                ),
            )
        )
    ).all()
    rank = {ConsultationStatus.OPEN: 0, ConsultationStatus.SCHEDULED: 1, ConsultationStatus.DRAFT: 2}

    def key(consultation: Consultation) -> tuple[int, float, int]:
        if consultation.status == ConsultationStatus.CLOSED:
            closed = consultation.closed_at or consultation.closes_at
            return (3, -closed.timestamp(), consultation.id or 0)
        moment = consultation.closes_at if consultation.status == ConsultationStatus.OPEN else consultation.opens_at
        return (rank[consultation.status], moment.timestamp(), consultation.id or 0)

    return sorted(found, key=key)[:OVERVIEW_LIMIT]
