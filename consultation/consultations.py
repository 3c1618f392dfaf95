"""Consultations (议事协商): a community worker or committee member puts a matter to residents, who add short
statements and vote agree / disagree / pass on each other's, one statement at a time.

Rules kept here, whatever the front end:
- Only staff and the committee (Action.RUN_CONSULTATION) create, open, close and moderate consultations.
- Whoever takes part is a verified member of the consultation's community, inside its audience (buildings,
  residents' groups, roles, as for notices), and eligible (verified residents by default).
- A participant is a random pseudonym per consultation. Votes and exports carry the pseudonym only; the link
  from a person to their pseudonym is read to find a person's own pseudonym and to tell an author how
  moderation went, never to say who voted what. A person who erases their data (/forget) takes back their
  votes in consultations still open (consultation.erasure), so forgetting and joining again never votes twice.
- One vote per participant and statement, held by the database: a change updates the row (INSERT ... ON
  CONFLICT DO UPDATE), so two taps at once never count twice. Votes are taken only while the consultation is
  open, on approved statements.
- Every state change of a consultation (created, opened, closed, statements added and moderated) is in the
  audit log; votes are not, as the log is public and votes are counted, not disclosed one by one.

The use cases (create_consultation, open_now, close_consultation) record their consequences as schedule rows in
the caller's transaction (community.scheduling): creating asks for the jobs OPEN (unless the opening time has
come: then it opens at once) and CLOSE, closing asks for OUTCOME at once, and the vote that takes the map
request asks for MAP. The chat, `linli consultation create` and the jobs call the same functions. Opening and
closing are idempotent: a conditional update lets exactly one caller through."""

from __future__ import annotations

import functools
import itertools
import math
import operator
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable, Result, Select, and_, bindparam, case, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel, col, delete, select

from community import audit, settings
from community.anonymity import Anonymity
from community.communities import clean_text, effective_roles, get_community
from community.errors import ValidationFailed
from community.models import Community, CommunitySetting, Membership
from community.notices import Attachment
from community.permissions import allows
from community.roles import Action
from community.scheduling import JobSpec
from community.scope import (
    MEMBER_COLUMNS,
    Criteria,
    Scope,
    check_scope,
    is_admitted,
    join_member,
    member_of,
)
from community.settings import stored_value
from community.unit_of_work import UnitOfWork
from consultation import map_memory as map_memory_json
from consultation import messages
from consultation.errors import (
    AudienceTooSmall,
    ClosesBeforeOpens,
    ClosingTimePassed,
    ConsultationClosed,
    ConsultationNotAllowed,
    ConsultationNotFound,
    ConsultationNotOpenYet,
    DuplicateStatement,
    EmptyStatement,
    FiguresWithheld,
    HiddenDuplicateStatement,
    HouseholdTookPart,
    InvalidVote,
    NotEligible,
    RejectionReasonRequired,
    StatementNotFound,
    StatementNotVotable,
    StatementsNotAllowed,
    StatementTooLong,
)
from consultation.map_memory import ClusteringMemory
from consultation.models import (
    Consultation,
    ConsultationStatus,
    Eligibility,
    MapMemory,
    Participant,
    ParticipantLink,
    Statement,
    StatementRejection,
    StatementStatus,
    Vote,
    VoteTallySnapshot,
)
from consultation.reach import count_eligible, criteria
from consultation.settings import MAP_REFRESH
from i18n import LANGUAGES, N_

if TYPE_CHECKING:
    # numpy loads only where a vote matrix is built: a command or a start that never builds one must not pay for
    # it (tests/test_startup_imports.py).
    import numpy as np
    from numpy.typing import NDArray

    from consultation.opinion_map import FloatArray, IntArray, OpinionMap, OpinionMapSettings
    from consultation.vote_reading import StoredVotes

MAX_TITLE = 200
MAX_BACKGROUND = 4000
MAX_STATEMENT = 280
MAX_SEEDS = 20  # statements staff start a consultation with; more is the residents' part
# How often votes ask for a fresh opinion map to order the statements by: a per-community setting,
# consultation.settings.MAP_REFRESH.
# Votes a consultation needs before a map is worth computing for the order (below it, fewest votes first).
MAP_MIN_VOTES = 5

_REJECTION_MESSAGES: dict[StatementRejection, str] = {
    StatementRejection.OFF_TOPIC: N_("It is not about the matter of this consultation."),
    StatementRejection.OFFENSIVE: N_("It is offensive or attacks someone."),
    StatementRejection.PERSONAL_DATA: N_("It names people or holds personal data."),
    StatementRejection.UNCLEAR: N_("It is hard to understand: please say it more plainly."),
    StatementRejection.REPEATS_ANOTHER: N_("Another statement already says the same: vote on that one."),
    StatementRejection.OTHER: N_("The moderator did not accept it. Ask your community worker if you want to know why."),
}


@dataclass(frozen=True, slots=True)
class ConsultationJob:
    """The arguments of every consultation job."""

    consultation_id: int


# The consultation's time-driven transitions, scheduled by the use cases below; the bot ring says what each does.
OPEN = JobSpec("consultation.open", ConsultationJob, "consultation:{consultation_id}:open")
CLOSE = JobSpec("consultation.close", ConsultationJob, "consultation:{consultation_id}:close")
# The participants' outcome, computed outside any transaction in the jobs' process, due at once after a close.
OUTCOME = JobSpec("consultation.outcome", ConsultationJob, "consultation:{consultation_id}:outcome")
# The opinion map that orders the statements, asked for by a vote (record_vote), at most once per MAP_REFRESH.
MAP = JobSpec("consultation.map", ConsultationJob, "consultation:{consultation_id}:map")


def rejection_message(reason: StatementRejection) -> str:
    """What a rejected statement's author is told (a message id, translated by the front end)."""
    return _REJECTION_MESSAGES[reason]


class VoteValue(IntEnum):
    AGREE = 1
    DISAGREE = -1
    PASS = 0


@dataclass(frozen=True, slots=True)
class ConsultationDraft:
    community_id: int
    title: str
    background: str
    language: str  # the language title and background are written in
    opens_at: datetime  # aware
    closes_at: datetime  # aware
    audience: Scope = field(default_factory=Scope)
    eligibility: Eligibility = Eligibility.RESIDENTS
    allow_statements: bool = True
    moderated: bool = True
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class ConsultationFigures:
    """How a consultation stands, for the workers: counts only, never who voted what. While fewer than k
    (the community's, community.settings.anonymity) have voted, how they voted is withheld: agree, disagree and
    passed are None."""

    participants: int  # pseudonyms handed out
    voters: int  # participants with at least one vote on an approved statement
    votes: int  # on approved statements
    agree: int | None
    disagree: int | None
    passed: int | None
    pending: int  # statements by status
    approved: int
    rejected: int
    min_group_size: int  # k for this consultation: the site's, or its community's if raised (community.settings)
    # When the votes were counted, if not just now: a large consultation's figures on the staff's screen are the
    # jobs' worker's last count (staff_figures, VoteTallySnapshot).
    as_of: datetime | None = None
    uncounted: bool = False  # a large consultation's votes not counted yet by the worker: no vote figures

    @property
    def withheld(self) -> bool:
        """Too few voters for their votes to be shown as counts (community.anonymity)."""
        return self.agree is None


@dataclass(frozen=True, slots=True, eq=False)
class VoteMatrix:
    """The votes for the opinion map and the exports: participants (by pseudonym, in the order they joined)
    × statements (by id), held as one cell per vote (+1 agree, -1 disagree, 0 pass; a cell absent is unseen), as
    compute_opinion_map_from_cells takes them: ten million votes are 90 MB so, where the dense float matrix of a
    100,000 × 1,000 consultation would be 800 MB. Only participants with a vote.

    The statements are the approved ones, and those moderated out (rejected) after votes were cast on them
    (``moderated_out``): the opinion map keeps their columns as Pol.is does (consultation.opinion_map), while
    the counts shown (matrix_tally, the outcome's statements) leave them out."""

    participants: tuple[str, ...]
    statement_ids: tuple[int, ...]
    # Per vote: its participant (an index into participants), its statement (into statement_ids), its value.
    rows: NDArray[np.int32]
    columns: NDArray[np.int32]
    values: NDArray[np.int8]
    moderated_out: frozenset[int] = frozenset()

    @classmethod
    def from_dense(
        cls,
        participants: Sequence[str],
        statement_ids: Sequence[int],
        votes: FloatArray,
        moderated_out: frozenset[int] = frozenset(),
    ) -> VoteMatrix:
        """The matrix of a dense participants × statements array (NaN unseen), as small tests write one."""
        import numpy as np

        rows, columns = np.nonzero(~np.isnan(votes))
        return cls(
            tuple(participants),
            tuple(statement_ids),
            rows.astype(np.int32),
            columns.astype(np.int32),
            votes[rows, columns].astype(np.int8),
            moderated_out,
        )

    @property
    def votes(self) -> FloatArray:
        """The dense participants × statements matrix (NaN unseen): for small matrices only (8 bytes a cell)."""
        import numpy as np

        dense = np.full((len(self.participants), len(self.statement_ids)), np.nan, dtype=np.float64)
        dense[self.rows, self.columns] = self.values
        return dense

    def opinion_map(
        self,
        settings: OpinionMapSettings | None = None,
        previous: ClusteringMemory | None = None,
        advance: bool = True,
    ) -> OpinionMap:
        """The opinion map of these votes (consultation.opinion_map.compute_opinion_map_from_cells), their
        moderated-out statements handled as Pol.is does; ``previous`` and ``advance`` as there."""
        from consultation.opinion_map import compute_opinion_map_from_cells

        return compute_opinion_map_from_cells(
            self.rows,
            self.columns,
            self.values,
            self.participants,
            self.statement_ids,
            settings,
            moderated_out=self.moderated_out,
            previous=previous,
            advance=advance,
        )

    def shown(self) -> NDArray[np.bool_]:
        """Per statement, whether it is approved (not moderated out)."""
        import numpy as np

        return np.array([sid not in self.moderated_out for sid in self.statement_ids], dtype=np.bool_)

    def counts(self) -> tuple[IntArray, IntArray, IntArray]:
        """Agree, disagree and pass votes per statement, over every participant."""
        import numpy as np

        by_value = np.bincount(
            self.columns.astype(np.int64) * 3 + (self.values + 1), minlength=3 * len(self.statement_ids)
        ).reshape(-1, 3)
        return by_value[:, 2], by_value[:, 0], by_value[:, 1]


# --- helpers ---------------------------------------------------------------------------------------------------


def _insert(uow: UnitOfWork, model: type[Any]) -> Any:
    """INSERT with ON CONFLICT support, in the session's dialect (both have the same on_conflict_* methods)."""
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)


async def _core_connection(uow: UnitOfWork) -> AsyncConnection:
    """The session's connection, in its transaction, for prebuilt Core statements: the ORM's execute path costs
    about 100 µs a statement more, and a vote in chat runs three. Pending ORM changes are flushed first, as the
    session's own execute would."""
    session = uow.session
    if session.new or session.dirty or session.deleted:
        await session.flush()
    return await session.connection()


async def _core(uow: UnitOfWork, statement: Executable, params: Mapping[str, Any]) -> Result[*tuple[Any, ...]]:
    return await (await _core_connection(uow)).execute(statement, params)


def normalize_statement(text: str) -> str:
    """What two statements must share to be the same: NFKC, blanks collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def clean_statement(text: str) -> str:
    """The statement as it will be shown: stripped, 1 to MAX_STATEMENT characters."""
    cleaned = text.strip()
    if not cleaned:
        raise EmptyStatement()
    if len(cleaned) > MAX_STATEMENT:
        raise StatementTooLong(limit=MAX_STATEMENT, length=len(cleaned))
    return cleaned


def next_seed(seeds: Sequence[str], typed: str) -> str:
    """A statement staff type to start a consultation with, checked before the consultation exists: its length,
    at most MAX_SEEDS of them, and not one already typed (add_statement checks again against the database)."""
    if len(seeds) >= MAX_SEEDS:
        raise ValidationFailed(N_("That is enough to start with: residents add the rest. Tap Done."))
    text = clean_statement(typed)
    normalized = normalize_statement(text)
    for number, seed in enumerate(seeds, start=1):
        if normalize_statement(seed) == normalized:
            raise ValidationFailed(N_("You added that statement already (number %(number)s)."), number=number)
    return text


async def get_consultation(uow: UnitOfWork, consultation_id: int) -> Consultation:
    found = await uow.session.get(Consultation, consultation_id)
    if found is None:
        raise ConsultationNotFound()
    return found


async def find_consultation(uow: UnitOfWork, consultation_id: int) -> Consultation | None:
    """The consultation, or None for an id that does not exist (an operator's typo, a job of a deleted one)."""
    return await uow.session.get(Consultation, consultation_id)


async def is_open(uow: UnitOfWork, consultation_id: int) -> bool:
    """Whether the consultation exists and is open (it takes votes, and its map orders its statements)."""
    consultation = await find_consultation(uow, consultation_id)
    return consultation is not None and consultation.status is ConsultationStatus.OPEN


async def listing(uow: UnitOfWork, community_id: int | None = None) -> list[tuple[Consultation, Community]]:
    """Every consultation (of one community, when given) with its community, by id: the operator's list."""
    query = select(Consultation, Community).join(Community, col(Community.id) == col(Consultation.community_id))
    if community_id is not None:
        query = query.where(col(Consultation.community_id) == community_id)
    return list((await uow.session.exec(query.order_by(col(Consultation.id)))).all())


def closable(consultation: Consultation) -> bool:
    """Whether "Close now" still means something: anything but a closed consultation closes
    (close_consultation)."""
    return consultation.status != ConsultationStatus.CLOSED


def exportable(consultation: Consultation) -> bool:
    """Whether the consultation has votes to export: it opened (it is open or closed)."""
    return consultation.status in (ConsultationStatus.OPEN, ConsultationStatus.CLOSED)


def awaits_moderation(statement: Statement) -> bool:
    """Whether a moderator's decision is still to come: only then is it decided (participation.decide)."""
    return statement.status == StatementStatus.PENDING


def takes_votes(statement: Statement) -> bool:
    """Whether participants see and vote on the statement: a moderator approved it (or none had to)."""
    return statement.status == StatementStatus.APPROVED


async def get_statement(uow: UnitOfWork, statement_id: int) -> Statement:
    found = await uow.session.get(Statement, statement_id)
    if found is None:
        raise StatementNotFound()
    return found


async def _require_runner(uow: UnitOfWork, person_id: int, community_id: int) -> None:
    if not allows(await effective_roles(uow, person_id, community_id), Action.RUN_CONSULTATION):
        raise ConsultationNotAllowed()


def _require_open(consultation: Consultation, now: datetime) -> None:
    """Taking part needs the consultation open, and its closing time not yet come (should the close job run late)."""
    _require_open_status(consultation.status, consultation.closes_at, now)


def _require_open_status(status: ConsultationStatus, closes_at: datetime, now: datetime) -> None:
    if status == ConsultationStatus.CLOSED or now >= closes_at:
        raise ConsultationClosed()
    if status != ConsultationStatus.OPEN:
        raise ConsultationNotOpenYet()


# --- creating, opening, closing -------------------------------------------------------------------------------


def clean_title(text: str) -> str:
    return clean_text(text, limit=MAX_TITLE, message=N_("A title needs 1 to %(limit)s characters."))


def clean_background(text: str) -> str:
    return clean_text(text, limit=MAX_BACKGROUND, message=N_("The background needs 1 to %(limit)s characters."))


def validate_draft(draft: ConsultationDraft, now: datetime) -> tuple[str, str]:
    """The checks that need no database, for create() and for a composer at each step: the title and the
    background as they will be stored, or a refusal."""
    title, background = clean_title(draft.title), clean_background(draft.background)
    if draft.language not in LANGUAGES:
        raise ValidationFailed(N_("Unknown language: %(language)s"), language=draft.language)
    if draft.opens_at.tzinfo is None or draft.closes_at.tzinfo is None:
        raise ValueError("ConsultationDraft's times must be timezone-aware")
    if draft.closes_at <= draft.opens_at:
        raise ClosesBeforeOpens()
    if draft.closes_at <= now:
        raise ClosingTimePassed()
    return title, background


def check_opening_time(opens_at: datetime, now: datetime) -> None:
    """A typed opening time must lie ahead: "open now" is its own choice (create() itself takes a past
    opening time, and the consultation opens at once)."""
    if opens_at <= now:
        raise ValidationFailed(N_("That opening time has already passed. Choose a later one, or open it now."))


async def check_audience(uow: UnitOfWork, community_id: int, audience: Scope, eligibility: Eligibility) -> int:
    """The audience's size as the preview counts it (consultation.reach.count_eligible: eligible people in scope
    that can be reached now), refused with AudienceTooSmall below k (uow.anonymity): in so small an audience the
    figures would tell how each one voted. create() checks it; a composer calls it to say so before Create."""
    count = await count_eligible(uow, community_id, audience, eligibility)
    anonymity = await settings.anonymity(uow, community_id)
    if not anonymity.shows(count):
        raise AudienceTooSmall(audience=count, k=anonymity.min_group_size)
    return count


async def anonymity_of(uow: UnitOfWork, consultation_id: int) -> Anonymity:
    """k for this consultation: the site's, or its community's where the community raised it."""
    community_id = (
        await uow.session.exec(select(Consultation.community_id).where(Consultation.id == consultation_id))
    ).first()
    if community_id is None:
        raise ConsultationNotFound()
    return await settings.anonymity(uow, community_id)


async def create(uow: UnitOfWork, actor_id: int | None, draft: ConsultationDraft) -> Consultation:
    """Create a consultation, SCHEDULED to open at opens_at, and nothing more: the workflow is
    create_consultation(), which also schedules its transitions. Everything is checked first, the audience's
    size too (check_audience: at least k people).
    actor_id None is the operator at the terminal (as for invitations); anyone else needs RUN_CONSULTATION."""
    community = await get_community(uow, draft.community_id)
    if actor_id is not None:
        await _require_runner(uow, actor_id, draft.community_id)
    now = uow.clock.now()
    title, background = validate_draft(draft, now)
    await check_scope(uow, draft.community_id, draft.audience)
    await check_audience(uow, draft.community_id, draft.audience, draft.eligibility)

    consultation = Consultation(
        community_id=draft.community_id,
        title=title,
        background=background,
        language=draft.language,
        attachment_kind=draft.attachment.kind if draft.attachment else None,
        attachment_channel=draft.attachment.channel if draft.attachment else None,
        attachment_ref=draft.attachment.ref if draft.attachment else None,
        attachment_name=draft.attachment.name if draft.attachment else None,
        audience=draft.audience.to_json(),
        eligibility=draft.eligibility,
        opens_at=draft.opens_at.astimezone(UTC),
        closes_at=draft.closes_at.astimezone(UTC),
        allow_statements=draft.allow_statements,
        moderated=draft.moderated,
        status=ConsultationStatus.SCHEDULED,
        created_by=actor_id,
        created_at=now,
    )
    uow.session.add(consultation)
    await uow.session.flush()
    await audit.record(
        uow,
        action="consultation.created",
        subject_type="consultation",
        subject_id=consultation.id,
        community_id=community.id,
        actor_id=actor_id,
        data={
            "title": title,
            "audience": draft.audience.to_json(),
            "eligibility": draft.eligibility.value,
            "opens_at": consultation.opens_at.isoformat(),
            "closes_at": consultation.closes_at.isoformat(),
            "allow_statements": draft.allow_statements,
            "moderated": draft.moderated,
        },
    )
    return consultation


@dataclass(frozen=True, slots=True)
class Created:
    consultation: Consultation
    # How many invitations this call queued when it opened the consultation at once (its opening time had come);
    # None when it waits for its opening.
    invited: int | None

    @property
    def opened(self) -> bool:
        return self.invited is not None


async def create_consultation(
    uow: UnitOfWork, actor_id: int | None, draft: ConsultationDraft, statements: Sequence[str] = ()
) -> Created:
    """The workflow of creating a consultation, whoever asks (the chat, `linli consultation create`): create it
    with its first statements, schedule its closing, and its opening, or open it at once and invite when the
    opening time has come. actor_id None is the operator at the terminal; anyone else needs RUN_CONSULTATION."""
    consultation = await create(uow, actor_id, draft)
    assert consultation.id is not None
    for statement in statements:
        await add_statement(uow, actor_id, consultation.id, statement)
    job = ConsultationJob(consultation.id)
    uow.schedule(CLOSE, consultation.closes_at, job)
    if consultation.opens_at > uow.clock.now():
        uow.schedule(OPEN, consultation.opens_at, job)
        return Created(consultation, None)
    return Created(consultation, await open_now(uow, consultation.id))


async def open_now(uow: UnitOfWork, consultation_id: int, actor_id: int | None = None) -> int | None:
    """Open the consultation (its opening time has come, or a person opens it) and, when this call opened it,
    invite everyone eligible in its scope in the same transaction (consultation.messages.invite): an invitation
    goes out with the opening or not at all. How many invitations were queued; None when it was open or closed
    already, and nobody is invited again."""
    if not await open_consultation(uow, consultation_id, actor_id):
        return None
    return await messages.invite(uow, await get_consultation(uow, consultation_id))


async def _transition(
    uow: UnitOfWork,
    consultation_id: int,
    actor_id: int | None,
    before: tuple[ConsultationStatus, ...],
    after: ConsultationStatus,
) -> bool:
    consultation = await get_consultation(uow, consultation_id)
    if actor_id is not None:
        await _require_runner(uow, actor_id, consultation.community_id)
    now = uow.clock.now()
    stamp = {"opened_at": now} if after == ConsultationStatus.OPEN else {"closed_at": now}
    result = await uow.session.exec(
        update(Consultation)
        .where(col(Consultation.id) == consultation_id, col(Consultation.status).in_(before))
        .values(status=after, **stamp)
        .execution_options(synchronize_session=False)
    )
    # The loaded row as the database has it now, whoever made the change (the caller shows it).
    await uow.session.refresh(consultation)
    if result.rowcount != 1:
        return False
    data: dict[str, Any] = {}
    if after == ConsultationStatus.CLOSED:
        counted = await figures(uow, consultation_id)
        data = {"participants": counted.participants, "votes": counted.votes, "statements": counted.approved}
    await audit.record(
        uow,
        action="consultation.opened" if after == ConsultationStatus.OPEN else "consultation.closed",
        subject_type="consultation",
        subject_id=consultation_id,
        community_id=consultation.community_id,
        actor_id=actor_id,
        data=data,
    )
    return True


async def open_consultation(uow: UnitOfWork, consultation_id: int, actor_id: int | None = None) -> bool:
    """SCHEDULED (or DRAFT) -> OPEN. True when this call opened it; False when it was already open or closed.
    actor_id None is the scheduler's job; a person opening it early needs RUN_CONSULTATION."""
    return await _transition(
        uow,
        consultation_id,
        actor_id,
        (ConsultationStatus.DRAFT, ConsultationStatus.SCHEDULED),
        ConsultationStatus.OPEN,
    )


async def close_consultation(uow: UnitOfWork, consultation_id: int, actor_id: int | None = None) -> bool:
    """-> CLOSED, from any other status, whoever closes it (its closing job, or a person: "Close now"), and the
    participants' outcome asked for at once (OUTCOME). True when this call closed it; False when it was closed
    already."""
    closed = await _transition(
        uow,
        consultation_id,
        actor_id,
        (ConsultationStatus.DRAFT, ConsultationStatus.SCHEDULED, ConsultationStatus.OPEN),
        ConsultationStatus.CLOSED,
    )
    if closed:
        uow.schedule(OUTCOME, uow.clock.now(), ConsultationJob(consultation_id))
    return closed


# --- taking part -------------------------------------------------------------------------------------------------


async def is_eligible(uow: UnitOfWork, person_id: int, consultation: Consultation) -> bool:
    """A verified member of the consultation's community, inside its scope, holding an eligible role: the
    single-person side of its Criteria (community.scope), whose SQL side consultation.reach invites with."""
    return await is_admitted(uow, person_id, criteria(consultation))


@functools.cache
def _open_statement() -> Select[*tuple[Any, ...]]:
    """Built once, as /consult lists them at every visit: the open consultations of the person's communities with
    their community (which the list names) and the person's membership there as community.scope reads it
    (MEMBER_COLUMNS last: one row per role they hold), so that eligibility is checked without a query per
    community."""
    listed = (
        sa_select(Consultation, Community, *MEMBER_COLUMNS)
        .select_from(Consultation)
        .join(Community, col(Community.id) == col(Consultation.community_id))
    )
    return (
        join_member(listed, col(Consultation.community_id))
        .where(col(Consultation.status) == ConsultationStatus.OPEN, col(Consultation.closes_at) > bindparam("now"))
        .order_by(col(Consultation.closes_at), col(Consultation.id))
    )


async def open_with_communities(uow: UnitOfWork, person_id: int) -> list[tuple[Consultation, Community]]:
    """The open consultations the person may take part in, each with its community, closing soonest first: one
    query whatever their number."""
    params = {"person_id": person_id, "now": uow.clock.now()}
    rows = (await uow.session.exec(_open_statement(), params=params)).all()  # type: ignore[call-overload]
    found: list[tuple[Consultation, Community]] = []
    # The rows of one consultation are consecutive (ordered by it), one per role the person holds there.
    for _, group in itertools.groupby(rows, key=lambda row: row[0].id):
        held = list(group)
        consultation, community = held[0][0], held[0][1]
        if criteria(consultation).admits(member_of([row[2:] for row in held])):
            found.append((consultation, community))
    return found


async def participant_of(uow: UnitOfWork, person_id: int, consultation_id: int) -> Participant | None:
    """The person's pseudonym in the consultation, if they took part."""
    return (
        await uow.session.exec(
            select(Participant)
            .join(ParticipantLink, col(ParticipantLink.participant_id) == col(Participant.id))
            .where(ParticipantLink.consultation_id == consultation_id, ParticipantLink.person_id == person_id)
        )
    ).first()


async def participate(uow: UnitOfWork, person_id: int, consultation_id: int) -> Participant:
    """The person's pseudonym in an open consultation, made on first use, for someone eligible now (asked at every
    call: NotEligible otherwise). Two calls at once for the same person end with one pseudonym: the link's unique
    constraint decides, and the loser's row is removed."""
    consultation = await get_consultation(uow, consultation_id)
    _require_open(consultation, uow.clock.now())
    # Checked at every action, not only the first: someone who moved out of the scope or lost the role since
    # keeps their pseudonym (what they did stays counted) but may do nothing more with it.
    if not await is_eligible(uow, person_id, consultation):
        raise NotEligible()
    found = await participant_of(uow, person_id, consultation_id)
    if found is not None:
        return found
    if consultation.eligibility.one_voice_per_household:
        await _require_household_silent(uow, person_id, consultation)
    participant = Participant(
        consultation_id=consultation_id, pseudonym=secrets.token_hex(8), created_at=uow.clock.now()
    )
    uow.session.add(participant)
    await uow.session.flush()
    linked = (
        await uow.session.exec(
            _insert(uow, ParticipantLink)
            .values(consultation_id=consultation_id, person_id=person_id, participant_id=participant.id)
            .on_conflict_do_nothing(index_elements=["consultation_id", "person_id"])
            .returning(col(ParticipantLink.id))
        )
    ).first()
    if linked is not None:
        return participant
    await uow.session.exec(delete(Participant).where(col(Participant.id) == participant.id))
    uow.session.expunge(participant)
    existing = await participant_of(uow, person_id, consultation_id)
    assert existing is not None
    return existing


async def _require_household_silent(uow: UnitOfWork, person_id: int, consultation: Consultation) -> None:
    """One voice per household: refused when another member of the person's household already took part
    (two representatives of one household, as data from before community.verification refused a second could
    hold). A representative who erased their data took the household's open votes with them
    (consultation.erasure), so the next one speaks for it afresh."""
    mine = (
        await uow.session.exec(
            select(Membership.household_id).where(
                Membership.person_id == person_id, Membership.community_id == consultation.community_id
            )
        )
    ).first()
    if mine is None:
        return
    other = (
        await uow.session.exec(
            select(ParticipantLink.id)
            .join(Membership, col(Membership.person_id) == col(ParticipantLink.person_id))
            .where(
                col(ParticipantLink.consultation_id) == consultation.id,
                col(ParticipantLink.person_id) != person_id,
                col(Membership.community_id) == consultation.community_id,
                col(Membership.household_id) == mine,
            )
            .limit(1)
        )
    ).first()
    if other is not None:
        raise HouseholdTookPart()


async def author_of(uow: UnitOfWork, statement_id: int) -> int | None:
    """The person who wrote a statement, to tell them how moderation went; None for staff's own statements and
    for authors who erased their data."""
    return (
        await uow.session.exec(
            select(ParticipantLink.person_id)
            .join(Statement, col(Statement.author_id) == col(ParticipantLink.participant_id))
            .where(Statement.id == statement_id)
        )
    ).first()


# --- statements ----------------------------------------------------------------------------------------------


def _duplicate(existing: Statement, author_id: int | None) -> DuplicateStatement | HiddenDuplicateStatement:
    """The refusal of a statement whose text is already there. It points to the existing one (its number, to vote
    on it) only where the writer may see it: an approved statement, their own, or anything for staff seeding
    (author_id None: they moderate). A pending or rejected statement of someone else is not revealed."""
    assert existing.id is not None
    if author_id is None or existing.status == StatementStatus.APPROVED or existing.author_id == author_id:
        return DuplicateStatement(existing.id)
    return HiddenDuplicateStatement()


async def _insert_statement(
    uow: UnitOfWork, consultation: Consultation, text: str, author_id: int | None, status: StatementStatus
) -> Statement:
    cleaned = clean_statement(text)
    normalized = normalize_statement(cleaned)
    existing = (
        await uow.session.exec(
            select(Statement).where(Statement.consultation_id == consultation.id, Statement.normalized == normalized)
        )
    ).first()
    if existing is not None:
        raise _duplicate(existing, author_id)
    # The id itself, not the row that holds it: the audit entry below records it (it once said "(1,)").
    inserted: int | None = (
        await uow.session.exec(
            _insert(uow, Statement)
            .values(
                consultation_id=consultation.id,
                text=cleaned,
                normalized=normalized,
                author_id=author_id,
                status=status,
                created_at=uow.clock.now(),
            )
            .on_conflict_do_nothing(index_elements=["consultation_id", "normalized"])
            .returning(col(Statement.id))
        )
    ).scalar_one_or_none()
    if inserted is None:  # the same text arrived at the same instant from someone else
        raced = (
            await uow.session.exec(
                select(Statement).where(
                    Statement.consultation_id == consultation.id, Statement.normalized == normalized
                )
            )
        ).one()
        raise _duplicate(raced, author_id)
    statement = await get_statement(uow, inserted)
    await audit.record(
        uow,
        action="consultation.statement_added",
        subject_type="consultation",
        subject_id=consultation.id,
        community_id=consultation.community_id,
        data={"statement_id": inserted, "status": status.value, "by_staff": author_id is None},
    )
    return statement


async def add_statement(uow: UnitOfWork, actor_id: int | None, consultation_id: int, text: str) -> Statement:
    """Staff seed a statement: approved at once, without an author. Possible until the consultation closes.
    actor_id None is the operator at the terminal."""
    consultation = await get_consultation(uow, consultation_id)
    if actor_id is not None:
        await _require_runner(uow, actor_id, consultation.community_id)
    if consultation.status == ConsultationStatus.CLOSED:
        raise ConsultationClosed()
    return await _insert_statement(uow, consultation, text, None, StatementStatus.APPROVED)


async def submit_statement(uow: UnitOfWork, person_id: int, consultation_id: int, text: str) -> Statement:
    """A participant's own statement: waits for a moderator where the consultation is moderated. An exact
    duplicate (after normalising blanks and case) is refused, with the existing statement's id only when the
    person may see it (approved, or their own: see _duplicate)."""
    consultation = await get_consultation(uow, consultation_id)
    _require_open(consultation, uow.clock.now())
    if not consultation.allow_statements:
        raise StatementsNotAllowed()
    clean_statement(text)  # refuse bad input before handing out a pseudonym
    participant = await participate(uow, person_id, consultation_id)
    status = StatementStatus.PENDING if consultation.moderated else StatementStatus.APPROVED
    return await _insert_statement(uow, consultation, text, participant.id, status)


async def moderate(
    uow: UnitOfWork, actor_id: int, statement_id: int, *, approve: bool, reason: StatementRejection | None = None
) -> Statement:
    """Approve a statement, or reject it with a reason from the list. Deciding again the same way changes
    nothing; a moderator may change their mind while the consultation runs, not after: the outcome counts
    the statements as they stood at the close."""
    statement = await get_statement(uow, statement_id)
    consultation = await get_consultation(uow, statement.consultation_id)
    await _require_runner(uow, actor_id, consultation.community_id)
    if not approve and reason is None:
        raise RejectionReasonRequired()
    status = StatementStatus.APPROVED if approve else StatementStatus.REJECTED
    new_reason = None if approve else reason
    if statement.status == status and statement.rejection_reason == new_reason:
        return statement
    if consultation.status == ConsultationStatus.CLOSED:
        raise ConsultationClosed()
    statement.status = status
    statement.rejection_reason = new_reason
    statement.moderated_at = uow.clock.now()
    uow.session.add(statement)
    await uow.session.flush()
    await audit.record(
        uow,
        action="consultation.statement_moderated",
        subject_type="consultation",
        subject_id=consultation.id,
        community_id=consultation.community_id,
        actor_id=actor_id,
        data={
            "statement_id": statement_id,
            "status": status.value,
            "reason": new_reason.value if new_reason is not None else None,
        },
    )
    return statement


async def pending_statements(uow: UnitOfWork, consultation_id: int) -> list[Statement]:
    """Statements waiting for a moderator, oldest first."""
    return list(
        (
            await uow.session.exec(
                select(Statement)
                .where(Statement.consultation_id == consultation_id, Statement.status == StatementStatus.PENDING)
                .order_by(col(Statement.id))
            )
        ).all()
    )


# --- votes -------------------------------------------------------------------------------------------------------


@functools.cache
def _vote_lookup() -> Select[*tuple[Any, ...]]:
    """Built once, as every vote asks it: the statement's and its consultation's state, the voter's pseudonym
    and their vote on the statement so far, in one query (with the consultation's title and whether it takes
    statements, which a chat shows with the next statement, and when a map was last asked for); and who may vote
    (the consultation's community, scope and eligibility) with the voter's membership as community.scope reads it
    (MEMBER_COLUMNS last: one row per role they hold), so that eligibility is checked at every vote without a
    query more."""
    lookup = (
        sa_select(
            col(Statement.status),
            col(Consultation.id),
            col(Consultation.status),
            col(Consultation.closes_at),
            col(ParticipantLink.participant_id),
            col(Consultation.title),
            col(Consultation.allow_statements),
            col(Vote.value),
            col(Consultation.map_requested_at),
            col(CommunitySetting.value),  # the community's map refresh interval, if it set one
            col(Consultation.community_id),
            col(Consultation.audience),
            col(Consultation.eligibility),
            *MEMBER_COLUMNS,
        )
        .select_from(Statement)
        .join(Consultation, col(Consultation.id) == col(Statement.consultation_id))
        .outerjoin(
            CommunitySetting,
            and_(
                col(CommunitySetting.community_id) == col(Consultation.community_id),
                col(CommunitySetting.key) == MAP_REFRESH.key,
            ),
        )
        .outerjoin(
            ParticipantLink,
            and_(
                col(ParticipantLink.consultation_id) == col(Consultation.id),
                col(ParticipantLink.person_id) == bindparam("person_id"),
            ),
        )
        .outerjoin(
            Vote,
            and_(
                col(Vote.participant_id) == col(ParticipantLink.participant_id),
                col(Vote.statement_id) == col(Statement.id),
            ),
        )
    )
    return join_member(lookup, col(Consultation.community_id), outer=True).where(
        col(Statement.id) == bindparam("statement_id")
    )


@functools.cache
def _vote_upsert(dialect: str) -> Any:
    """Built once per dialect: INSERT ... ON CONFLICT (participant, statement) DO UPDATE, values given at
    execution."""
    insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(Vote.__table__)  # type: ignore[attr-defined]
    excluded = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=["participant_id", "statement_id"], set_={"value": excluded.value, "at": excluded.at}
    )


@functools.cache
def _map_claim() -> Any:
    """Built once: take the map request for this interval. Only one transaction's update finds the old stamp
    (PostgreSQL re-checks the condition after waiting for the row's lock; SQLite writes one at a time), and only
    once the consultation has MAP_MIN_VOTES votes (a bounded look: at most that many rows)."""
    enough = (
        sa_select(col(Vote.id))
        .select_from(Vote)
        .join(Statement, col(Statement.id) == col(Vote.statement_id))
        .where(col(Statement.consultation_id) == bindparam("consultation_id"))
        .limit(1)
        .offset(MAP_MIN_VOTES - 1)
        .exists()
    )
    return (
        update(Consultation)
        .where(
            col(Consultation.id) == bindparam("consultation_id"),
            or_(col(Consultation.map_requested_at).is_(None), col(Consultation.map_requested_at) < bindparam("stale")),
            enough,
        )
        .values(map_requested_at=bindparam("now"))
    )


def _map_stale(requested_at: datetime | None, now: datetime, refresh: timedelta) -> bool:
    return requested_at is None or requested_at < now - refresh


@dataclass(frozen=True, slots=True)
class RecordedVote:
    participant_id: int
    consultation_id: int
    previous: VoteValue | None  # the participant's vote on the statement before this one, if they had one
    title: str  # the consultation's, for a front end that shows the next statement with it
    allow_statements: bool
    # This vote took the interval's map request, and asked for the map job (MAP) in its transaction.
    map_due: bool = False


async def vote(uow: UnitOfWork, person_id: int, statement_id: int, value: VoteValue | int) -> int:
    """Record or change the person's vote on an approved statement of an open consultation; returns their
    participant id. One row per participant and statement whatever the number of taps: the database decides."""
    return (await record_vote(uow, person_id, statement_id, value)).participant_id


async def record_vote(uow: UnitOfWork, person_id: int, statement_id: int, value: VoteValue | int) -> RecordedVote:
    """vote(), telling also what the participant had chosen before (a repeated tap is not a new vote), and
    whether the opinion map that orders the statements is due: when the last request is older than MAP_REFRESH
    (the community's setting, consultation.settings)
    (or there was none) and the consultation has MAP_MIN_VOTES votes, the one vote whose conditional update
    takes the request gets map_due. Within an interval a vote runs no statement more; only until a consultation
    has MAP_MIN_VOTES votes does every vote try the claim (and find too few)."""
    try:
        chosen = VoteValue(value)
    except ValueError:
        raise InvalidVote() from None
    params = {"person_id": person_id, "statement_id": statement_id}
    connection = await _core_connection(uow)
    rows = (await connection.execute(_vote_lookup(), params)).all()
    if not rows:
        raise StatementNotFound()
    member_at = len(rows[0]) - len(MEMBER_COLUMNS)  # the lookup's last columns are the voter's membership
    (
        statement_status,
        consultation_id,
        consultation_status,
        closes_at,
        participant_id,
        title,
        allow,
        before,
        requested_at,
        refresh_text,
        community_id,
        audience,
        eligibility,
    ) = rows[0][:member_at]
    now = uow.clock.now()
    _require_open_status(ConsultationStatus(consultation_status), closes_at, now)
    if statement_status != StatementStatus.APPROVED:
        raise StatementNotVotable()
    if participant_id is not None:
        # Eligible at every vote, not only the first (participate() checks the first): the same Criteria as the
        # invitation's, on the membership the lookup read.
        who = Criteria(int(community_id), Scope.from_json(audience), Eligibility(eligibility))
        if not who.admits(member_of([row[member_at:] for row in rows])):
            raise NotEligible()
    else:
        participant_id = (await participate(uow, person_id, consultation_id)).id
        connection = await _core_connection(uow)
    bind = uow.session.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"
    values = {"participant_id": participant_id, "statement_id": statement_id, "value": int(chosen), "at": now}
    await connection.execute(_vote_upsert(dialect), values)
    assert participant_id is not None and consultation_id is not None
    map_due = False
    refresh = stored_value(MAP_REFRESH, refresh_text)
    if _map_stale(requested_at, now, refresh):
        claim = {"consultation_id": consultation_id, "stale": now - refresh, "now": now}
        map_due = (await connection.execute(_map_claim(), claim)).rowcount == 1
        if map_due:
            uow.schedule(MAP, now, ConsultationJob(int(consultation_id)))
    return RecordedVote(
        participant_id=int(participant_id),
        consultation_id=int(consultation_id),
        previous=VoteValue(before) if before is not None else None,
        title=title,
        allow_statements=bool(allow),
        map_due=map_due,
    )


async def votes_of(uow: UnitOfWork, person_id: int, consultation_id: int) -> dict[int, VoteValue]:
    """The person's own votes (statement id -> value), to show them what they chose."""
    participant = await participant_of(uow, person_id, consultation_id)
    if participant is None:
        return {}
    rows = (
        await uow.session.exec(select(Vote.statement_id, Vote.value).where(Vote.participant_id == participant.id))
    ).all()
    return {statement_id: VoteValue(value) for statement_id, value in rows}


def _new_statement_boost(seen: int) -> float:
    """Polis's preference for statements few have voted on: 1 + 8 * 2^(-seen/5)."""
    return float(1.0 + 8.0 * 2.0 ** (-seen / 5.0))


async def next_statement(uow: UnitOfWork, participant_id: int, consultation_id: int) -> Statement | None:
    """The approved statement the participant should see next, None when they voted on every one.

    Polis's order, made deterministic: each unvoted statement scores priority × (1 + 8 · 2^(−votes/5)), where
    priority is the statement's stored one (Statement.priority: Polis's importance from the last opinion map,
    see store_priorities; statements newer than the map get the highest stored, so they are not buried) and
    votes is how many votes it has now. Polis squares that score, which changes no order. Highest score first;
    ties go to fewer votes, then the older statement. With no map yet every priority is 1: fewest votes first,
    then the older statement. Polis draws at random with these weights; here the best one is shown, so every
    participant sees the same order."""
    chosen = (await next_up(uow, participant_id, consultation_id)).statement_id
    return await get_statement(uow, chosen) if chosen is not None else None


@dataclass(frozen=True, slots=True)
class NextUp:
    """The statement a participant sees next (None: they voted on every approved one), its text, and how many
    approved statements still wait for their vote, the next one included."""

    statement_id: int | None
    text: str | None
    left: int


_FEWEST_VOTES = operator.itemgetter(2, 0)  # (votes, id) of an _unvoted() row


@functools.cache
def _unvoted() -> Select[int | None, str, int, float | None]:
    """Built once, as every vote asks it: the approved statements the participant has not voted on, each with
    its text, how many votes it has and its priority from the last map."""
    voted = sa_select(col(Vote.statement_id)).where(col(Vote.participant_id) == bindparam("participant_id"))
    return (
        sa_select(col(Statement.id), col(Statement.text), func.count(col(Vote.id)), col(Statement.priority))
        .select_from(Statement)
        .outerjoin(Vote, col(Vote.statement_id) == col(Statement.id))
        .where(
            col(Statement.consultation_id) == bindparam("consultation_id"),
            col(Statement.status) == StatementStatus.APPROVED,
            col(Statement.id).not_in(voted),
        )
        .group_by(col(Statement.id), col(Statement.text), col(Statement.priority))
    )


async def next_up(uow: UnitOfWork, participant_id: int, consultation_id: int) -> NextUp:
    """next_statement()'s choice with its text and the number left, in one query: a chat shows all three on
    every card, after every vote."""
    params = {"participant_id": participant_id, "consultation_id": consultation_id}
    rows = (await _core(uow, _unvoted(), params)).all()
    if not rows:
        return NextUp(statement_id=None, text=None, left=0)
    stored = [float(priority) for *_, priority in rows if priority is not None]
    if not stored:
        # No map yet, every priority 1: the score falls as votes grow, so fewest votes first, then the older one.
        best_id, text, *_ = min(rows, key=_FEWEST_VOTES)
        return NextUp(statement_id=int(best_id), text=str(text), left=len(rows))
    newest = max(stored)

    def key(row: tuple[int | None, str, int, float | None]) -> tuple[float, int, int]:
        statement_id, _, seen, priority = row
        score = (newest if priority is None else float(priority)) * _new_statement_boost(int(seen))
        return (-score, int(seen), int(statement_id or 0))

    best_id, text, *_ = min(rows, key=key)
    return NextUp(statement_id=int(best_id), text=str(text), left=len(rows))


async def store_priorities(
    uow: UnitOfWork, consultation_id: int, statement_ids: Sequence[int], importance: Sequence[float] | FloatArray
) -> bool:
    """Keep an opinion map's importance per statement (OpinionMap.statement_ids and .statement_importance) as
    the priorities next_up() orders by; the caller commits. Only while the consultation is open: after the
    close nobody is shown statements, and a map finishing late changes nothing. Running it twice with the same
    map is harmless. A value that is not finite (no information) is stored as None, like a statement newer than
    the map. True when stored; False when the consultation is not open."""
    if len(statement_ids) != len(importance):
        raise ValueError("statement_ids and importance must be aligned")
    status = (await uow.session.exec(select(Consultation.status).where(Consultation.id == consultation_id))).first()
    if status != ConsultationStatus.OPEN:
        return False
    if not statement_ids:
        return True
    rows = [
        {"sid": int(sid), "cid": consultation_id, "priority": float(value) if math.isfinite(value) else None}
        for sid, value in zip(statement_ids, importance, strict=True)
    ]
    await (await _core_connection(uow)).execute(_priority_update(), rows)
    return True


@functools.cache
def _priority_update() -> Any:
    """Built once: one statement's priority, run for every statement at once (executemany)."""
    table = Statement.__table__  # type: ignore[attr-defined]
    return (
        update(table)
        .where(table.c.id == bindparam("sid"), table.c.consultation_id == bindparam("cid"))
        .values(priority=bindparam("priority"))
    )


# --- figures and the vote matrix -----------------------------------------------------------------------------


def _voters_up_to(consultation_id: int, limit: int) -> Any:
    """How many participants voted on an approved statement, counted up to ``limit``: the distinct voters are
    read until that many are found, not over every vote (SQLite stops there; PostgreSQL may still hash them all)."""
    some = (
        sa_select(col(Vote.participant_id))
        .select_from(Vote)
        .join(Statement, col(Statement.id) == col(Vote.statement_id))
        .where(col(Statement.consultation_id) == consultation_id, col(Statement.status) == StatementStatus.APPROVED)
        .distinct()
        .limit(limit)
        .subquery()
    )
    return sa_select(func.count()).select_from(some)


async def require_figures_shown(uow: UnitOfWork, consultation_id: int) -> None:
    """FiguresWithheld while fewer than k (uow.anonymity) have voted: for whatever shows votes per pseudonym or per
    group. Only up to k voters are counted: the check runs when an export is asked for in a chat, and counting
    every voter of a large consultation (2.5 million votes) there took seconds, holding the unit of work."""
    anonymity = await anonymity_of(uow, consultation_id)
    voters = int((await uow.session.exec(_voters_up_to(consultation_id, anonymity.min_group_size))).one()[0])
    if not anonymity.shows(voters):
        raise FiguresWithheld(voters=voters, k=anonymity.min_group_size)


@dataclass(frozen=True, slots=True)
class VoteTally:
    """The votes on a consultation's approved statements, counted: how many voted, and the votes by value.
    Unmasked: ConsultationFigures withholds agree, disagree and passed while fewer than k voted."""

    voters: int
    agree: int
    disagree: int
    passed: int

    @property
    def votes(self) -> int:
        return self.agree + self.disagree + self.passed


# The most votes the staff's figures screen counts live, inside the staff member's unit of work: bounded by
# participants × approved statements (each votes at most once on each), read without a pass over the votes.
# Counting runs at about a microsecond a vote (2.5 million votes: 2.7-2.9 s), and on SQLite every other
# resident's tap waits for a unit of work (they take turns), so the bound keeps a count to some 50 ms, a tap's
# worth. Larger consultations show the worker's last count (VoteTallySnapshot), "as of" its time.
LIVE_TALLY_UP_TO = 50_000


async def vote_tally(uow: UnitOfWork, consultation_id: int) -> VoteTally:
    """One pass over the votes on the approved statements: seconds on a large consultation (2.5 million votes),
    so the conversation calls it only below LIVE_TALLY_UP_TO (staff_figures); the jobs' worker calls it freely."""

    def counted(value: VoteValue) -> Any:
        return func.coalesce(func.sum(case((col(Vote.value) == int(value), 1), else_=0)), 0)

    # The voters and the votes by value in one pass over the votes, not two: each pass takes seconds.
    tally = (
        await uow.session.exec(
            sa_select(
                func.count(func.distinct(col(Vote.participant_id))),
                counted(VoteValue.AGREE),
                counted(VoteValue.DISAGREE),
                counted(VoteValue.PASS),
            )
            .select_from(Vote)
            .join(Statement, col(Statement.id) == col(Vote.statement_id))
            .where(col(Statement.consultation_id) == consultation_id, col(Statement.status) == StatementStatus.APPROVED)
        )  # type: ignore[call-overload]
    ).one()
    return VoteTally(voters=int(tally[0]), agree=int(tally[1]), disagree=int(tally[2]), passed=int(tally[3]))


def matrix_tally(matrix: VoteMatrix) -> VoteTally:
    """The same counts as vote_tally, from the vote matrix a map job has read already: no second pass over the
    votes. Like vote_tally, only the votes on approved statements: not those moderated out since."""
    import numpy as np

    on_shown = matrix.shown()[matrix.columns]
    values = matrix.values[on_shown]
    voted = np.bincount(matrix.rows[on_shown], minlength=len(matrix.participants)) > 0
    return VoteTally(
        voters=int(np.count_nonzero(voted)),
        agree=int(np.count_nonzero(values == int(VoteValue.AGREE))),
        disagree=int(np.count_nonzero(values == int(VoteValue.DISAGREE))),
        passed=int(np.count_nonzero(values == int(VoteValue.PASS))),
    )


async def map_memory(uow: UnitOfWork, consultation_id: int) -> ClusteringMemory | None:
    """What the consultation's opinion map remembers from its last computation (consultation.map_memory), None
    before the first or when what is stored cannot be read (the next map starts afresh)."""
    kept = await uow.session.get(MapMemory, consultation_id)
    return None if kept is None else map_memory_json.from_json(kept.memory)


async def store_map_memory(
    uow: UnitOfWork, consultation_id: int, memory: ClusteringMemory, computed_at: datetime
) -> None:
    """Keep what the map computed at ``computed_at`` remembers, for the next; a memory older than the one kept
    (two jobs finishing out of order) changes nothing. The caller commits."""
    await _keep_newer(
        uow, MapMemory, consultation_id, "computed_at", computed_at, {"memory": map_memory_json.to_json(memory)}
    )


async def store_tally(uow: UnitOfWork, consultation_id: int, tally: VoteTally, counted_at: datetime) -> None:
    """Keep the worker's count of a consultation's votes for the staff's figures screen; a count older than the
    one kept (two jobs finishing out of order) changes nothing. The caller commits."""
    counted = {"voters": tally.voters, "agree": tally.agree, "disagree": tally.disagree, "passed": tally.passed}
    await _keep_newer(uow, VoteTallySnapshot, consultation_id, "counted_at", counted_at, counted)


async def _keep_newer(
    uow: UnitOfWork, model: type[SQLModel], consultation_id: int, stamp: str, at: datetime, values: dict[str, Any]
) -> None:
    """The consultation's one row of ``model`` set to ``values`` as of ``at`` (its column ``stamp``), unless the
    row kept is newer. One statement, an upsert: a map job and the outcome job may store the first row at once."""
    table = model.__table__  # type: ignore[attr-defined]
    insert = _insert(uow, model).values(consultation_id=consultation_id, **{stamp: at}, **values)
    await uow.session.exec(
        insert.on_conflict_do_update(
            index_elements=["consultation_id"], set_={**values, stamp: at}, where=table.c[stamp] <= at
        )
    )


async def _statements_and_participants(uow: UnitOfWork, consultation_id: int) -> tuple[int, dict[StatementStatus, int]]:
    """Cheap counts (participants by an index, statements by status: hundreds), fine inside any unit of work."""
    participants = (
        await uow.session.exec(
            select(func.count()).select_from(Participant).where(Participant.consultation_id == consultation_id)
        )
    ).one()
    by_status = (
        await uow.session.exec(
            sa_select(col(Statement.status), func.count())
            .where(col(Statement.consultation_id) == consultation_id)
            .group_by(col(Statement.status))
        )  # type: ignore[call-overload]
    ).all()
    return int(participants), {StatementStatus(status): int(count) for status, count in by_status}


async def _figures(
    uow: UnitOfWork,
    consultation_id: int,
    participants: int,
    statuses: Mapping[StatementStatus, int],
    tally: VoteTally | None,
    as_of: datetime | None = None,
) -> ConsultationFigures:
    anonymity = await anonymity_of(uow, consultation_id)
    counted = tally or VoteTally(0, 0, 0, 0)
    shown = tally is not None and anonymity.shows(counted.voters)
    return ConsultationFigures(
        participants=participants,
        voters=counted.voters,
        votes=counted.votes,
        agree=counted.agree if shown else None,
        disagree=counted.disagree if shown else None,
        passed=counted.passed if shown else None,
        pending=statuses.get(StatementStatus.PENDING, 0),
        approved=statuses.get(StatementStatus.APPROVED, 0),
        rejected=statuses.get(StatementStatus.REJECTED, 0),
        min_group_size=anonymity.min_group_size,
        as_of=as_of,
        uncounted=tally is None,
    )


async def figures(uow: UnitOfWork, consultation_id: int, tally: VoteTally | None = None) -> ConsultationFigures:
    """Participation so far, in counts only; how people voted only once k have voted (ConsultationFigures).
    Counts the votes (vote_tally) unless given them: seconds on a large consultation, for the jobs' worker and
    the exports; the staff's screen uses staff_figures."""
    participants, statuses = await _statements_and_participants(uow, consultation_id)
    counted = tally if tally is not None else await vote_tally(uow, consultation_id)
    return await _figures(uow, consultation_id, participants, statuses, counted)


async def staff_figures(uow: UnitOfWork, consultation_id: int) -> ConsultationFigures:
    """The figures for the staff's screen, inside a conversation's unit of work, which no count of millions of
    votes may hold: counted live while at most LIVE_TALLY_UP_TO votes are possible, otherwise the worker's last
    count (as_of its time), or none yet (uncounted: the participants and statements only)."""
    participants, statuses = await _statements_and_participants(uow, consultation_id)
    if participants * statuses.get(StatementStatus.APPROVED, 0) <= LIVE_TALLY_UP_TO:
        return await _figures(uow, consultation_id, participants, statuses, await vote_tally(uow, consultation_id))
    kept = await uow.session.get(VoteTallySnapshot, consultation_id)
    if kept is None:
        return await _figures(uow, consultation_id, participants, statuses, None)
    tally = VoteTally(voters=kept.voters, agree=kept.agree, disagree=kept.disagree, passed=kept.passed)
    return await _figures(uow, consultation_id, participants, statuses, tally, as_of=kept.counted_at)


async def vote_matrix(uow: UnitOfWork, consultation_id: int) -> VoteMatrix:
    """Every vote on the consultation's approved statements, and on those moderated out after votes were cast on
    them, as the cells the opinion map takes: consultation.opinion_map.compute_opinion_map_from_cells(m.rows,
    m.columns, m.values, m.participants, m.statement_ids, moderated_out=m.moderated_out).

    The votes come through the driver in bulk (consultation.vote_reading: binary COPY on PostgreSQL), never as
    row objects: ten million votes in about two seconds and 200 MB on their way to the cells."""
    import numpy as np  # loaded here, not at start-up: tests/test_startup_imports.py

    from consultation.vote_reading import read_votes

    # A rejected statement is one moderated out, if votes were cast on it while it was approved (votes are taken
    # on approved statements only); pending ones have none.
    statuses = (StatementStatus.APPROVED, StatementStatus.REJECTED)
    statements = (
        await uow.session.exec(
            select(Statement.id, Statement.status)
            .where(Statement.consultation_id == consultation_id, col(Statement.status).in_(statuses))
            .order_by(col(Statement.id))
        )
    ).all()
    participants = (
        await uow.session.exec(
            select(Participant.id, Participant.pseudonym)
            .where(Participant.consultation_id == consultation_id)
            .order_by(col(Participant.id))
        )
    ).all()
    statement_ids = np.array([sid for sid, _ in statements], dtype=np.int64)
    stored = await read_votes(
        await _core_connection(uow), consultation_id, [status.value for status in statuses], statement_ids.tolist()
    )
    approved = np.array([status == StatementStatus.APPROVED for _, status in statements], dtype=np.bool_)
    participant_ids = np.array([pid for pid, _ in participants], dtype=np.int64)
    return _cells(stored, statement_ids, approved, participant_ids, [pseudonym for _, pseudonym in participants])


def _cells(
    stored: StoredVotes,
    statement_ids: NDArray[np.int64],
    approved: NDArray[np.bool_],
    participant_ids: NDArray[np.int64],
    pseudonyms: Sequence[str],
) -> VoteMatrix:
    """The stored votes as matrix cells. Rows: the participants with a vote, in the order they joined (their ids
    ascend); columns: the approved statements and the rejected ones with votes, by id."""
    import numpy as np

    column = _positions(statement_ids, stored.statement_ids)
    row = _positions(participant_ids, stored.participant_ids)
    values = stored.values
    known = (column >= 0) & (row >= 0)
    if not bool(known.all()):
        # A vote of a pseudonym of another consultation (nothing in the schema forbids it): not this matrix's.
        column, row, values = column[known], row[known], values[known]
    kept = approved | (np.bincount(column, minlength=statement_ids.size) > 0)
    voted = np.bincount(row, minlength=participant_ids.size) > 0
    # Old index to new: the statements and participants kept, numbered in order.
    column_of = (np.cumsum(kept) - 1).astype(np.int32)
    row_of = (np.cumsum(voted) - 1).astype(np.int32)
    return VoteMatrix(
        participants=tuple(pseudonyms[i] for i in np.flatnonzero(voted).tolist()),
        statement_ids=tuple(statement_ids[kept].tolist()),
        rows=row_of[row],
        columns=column_of[column],
        values=values,
        moderated_out=frozenset(statement_ids[kept & ~approved].tolist()),
    )


def _positions(known: NDArray[np.int64], wanted: NDArray[np.integer]) -> NDArray[np.int32]:
    """The index of each of ``wanted`` in ``known`` (ascending ids), -1 for one not there. By a table over the ids'
    range when it is not much larger than the ids themselves (one gather over ten million votes, some 30 ms), by
    binary search otherwise."""
    import numpy as np

    if known.size == 0 or wanted.size == 0:
        return np.full(wanted.size, -1, dtype=np.int32)
    low, high = int(known[0]), int(known[-1])
    span = high - low + 1
    if span <= max(8 * known.size, 1 << 16):
        table = np.full(span, -1, dtype=np.int32)
        table[known - low] = np.arange(known.size, dtype=np.int32)
        if int(wanted.min()) >= low and int(wanted.max()) <= high:
            # The usual case, every id in range: wanted - low lies in [0, span), no wrap even in int32.
            return np.asarray(table[wanted - low], dtype=np.int32)
        inside = (wanted >= low) & (wanted <= high)
        found = np.full(wanted.size, -1, dtype=np.int32)
        found[inside] = table[wanted[inside] - low]
        return found
    nearest = np.minimum(np.searchsorted(known, wanted), known.size - 1)
    return np.where(known[nearest] == wanted, nearest, -1).astype(np.int32)
