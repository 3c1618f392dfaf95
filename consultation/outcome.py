"""The outcome of a consultation, for the committee: what was put, who took part, how every approved statement
fared overall and in each opinion group, what the groups stand for, where they agree and where they split.

Domain only: an Outcome is plain data, rendered elsewhere (bot/exports/ writes it as XLSX, CSV, PDF or JSON). Its
numbers come from the stored votes (consultations.vote_matrix) and the opinion map
(opinion_map.compute_opinion_map_from_cells); nothing here computes a statistic of its own, it only counts votes
and looks statements up.

Who may have it: the committee and the community's staff (Action.RUN_CONSULTATION), or the operator at the command
line (actor_id None). The raw votes (stream_votes) carry pseudonyms only: the link from a person to their pseudonym
(ParticipantLink) is never read here.

Counts are of the statements as they stand: approved ones only, with each participant's current vote (a changed
vote counts once, as its last value, on the day it was last changed). The opinion map alone also reads the votes of
statements moderated out after they were cast, as Pol.is does (they count toward a participant's votes).

While fewer than k people (uow.anonymity, community.anonymity) have voted, nothing here tells how anyone voted:
the outcome is withheld (Outcome.withheld: no counts per statement, no groups, no opinion map) and the raw votes
are refused (FiguresWithheld). Who took part and how many votes were cast stay in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple, cast
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import ColumnElement, String, case, func, literal, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.orm import Mapped
from sqlmodel import col, select

from community.communities import effective_roles, get_community
from community.permissions import allows
from community.roles import Action
from community.scope import Scope
from community.unit_of_work import UnitOfWork
from consultation.consultations import (
    ConsultationFigures,
    figures,
    get_consultation,
    map_memory,
    require_figures_shown,
    vote_matrix,
)
from consultation.errors import ExportNotAllowed
from consultation.models import (
    Consultation,
    ConsultationStatus,
    Eligibility,
    Participant,
    Statement,
    StatementStatus,
    Vote,
)
from consultation.opinion_map import (
    NOT_CLUSTERED,
    ConsensusStatement,
    DivisiveStatement,
    FloatArray,
    GroupInformedConsensus,
    IntArray,
    OpinionMap,
    OpinionMapSettings,
    RepresentativeStatement,
)

STREAM_BATCH = 5_000  # rows fetched at a time by stream_votes
_DAY = "day"  # a column name (a variable, so the message extractor does not take .label("day") for a message)


@dataclass(frozen=True, slots=True)
class VoteCounts:
    agree: int = 0
    disagree: int = 0
    passed: int = 0

    @property
    def seen(self) -> int:
        """Votes cast, passes included (Polis's "seen")."""
        return self.agree + self.disagree + self.passed


@dataclass(frozen=True, slots=True)
class StatementOutcome:
    id: int
    text: str
    by_staff: bool  # seeded by staff, not written by a participant
    overall: VoteCounts | None  # every participant's vote; None while the outcome is withheld
    by_group: tuple[VoteCounts, ...]  # the votes of each group's members, in the order of Outcome.groups


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    """An opinion group: participants who voted alike (numbered from 0, largest first)."""

    id: int
    size: int
    centre: tuple[float, float]
    # What sets the group apart, Polis's representative statements, strongest first.
    representative: tuple[RepresentativeStatement, ...]


@dataclass(frozen=True, slots=True)
class DayActivity:
    """One day in the community's time zone: participants who joined that day, votes cast (or last changed)."""

    day: date
    new_participants: int
    votes: int


@dataclass(frozen=True, slots=True, eq=False)
class Outcome:
    consultation_id: int
    community_id: int
    community_name: str
    timezone: str  # the community's: days and times are read in it
    title: str
    background: str
    language: str
    status: ConsultationStatus
    eligibility: Eligibility
    audience: Scope
    allow_statements: bool
    moderated: bool
    opens_at: datetime
    closes_at: datetime
    opened_at: datetime | None
    closed_at: datetime | None
    computed_at: datetime  # when this outcome was computed (an open consultation's outcome is provisional)
    min_group_size: int  # k: the fewest voters whose votes are shown (community.anonymity)
    figures: ConsultationFigures
    statements: tuple[StatementOutcome, ...]  # every approved statement, by id
    groups: tuple[GroupOutcome, ...]
    min_votes: int  # votes a participant needs to be placed in a group
    clustered: int  # participants placed in a group
    consensus_agree: tuple[ConsensusStatement, ...]
    consensus_disagree: tuple[ConsensusStatement, ...]
    group_informed_consensus: tuple[GroupInformedConsensus, ...]  # every statement, highest agree first
    divisive: tuple[DivisiveStatement, ...]
    silhouette: float | None
    participation: tuple[DayActivity, ...]  # every day from the first activity to the last
    # The opinion map itself, for a scatter plot: each voter's position (n, 2) and group index (-1: unclustered).
    positions: FloatArray
    group_of: IntArray

    @property
    def withheld(self) -> bool:
        """Fewer than k voted: no counts per statement, no groups, no opinion map (figures.agree... None)."""
        return self.figures.withheld

    @property
    def is_final(self) -> bool:
        return self.status == ConsultationStatus.CLOSED

    def statement(self, statement_id: int | str) -> StatementOutcome:
        for statement in self.statements:
            if statement.id == statement_id:
                return statement
        raise KeyError(statement_id)


class VoteRecord(NamedTuple):
    """One stored vote, as the raw-votes export shows it: pseudonym only, never a person. (A named tuple: there are
    millions of them in a large export, and a tuple is the cheapest object to make.)"""

    at: datetime
    statement_id: int
    participant: str  # the participant's pseudonym in this consultation
    value: int  # +1 agree, -1 disagree, 0 pass


async def require_exporter(uow: UnitOfWork, actor_id: int | None, consultation_id: int) -> Consultation:
    """The consultation, if the actor may export it: committee and staff (RUN_CONSULTATION) of its community, or
    the operator (None)."""
    consultation = await get_consultation(uow, consultation_id)
    if actor_id is not None and not allows(
        await effective_roles(uow, actor_id, consultation.community_id), Action.RUN_CONSULTATION
    ):
        raise ExportNotAllowed()
    return consultation


async def require_export(
    uow: UnitOfWork, actor_id: int | None, consultation_id: int, *, per_vote: bool
) -> Consultation:
    """The consultation, if the actor may export it in this form: committee and staff, or the operator
    (require_exporter); and a file with a row per pseudonym's vote (per_vote) only once at least k have voted
    (FiguresWithheld otherwise). Asked when the export is requested and again when it is made."""
    consultation = await require_exporter(uow, actor_id, consultation_id)
    if per_vote:
        await require_figures_shown(uow, consultation_id)
    return consultation


def _approved_votes(consultation_id: int) -> ColumnElement[bool]:
    return (col(Statement.consultation_id) == consultation_id) & (col(Statement.status) == StatementStatus.APPROVED)


async def compute_outcome(
    uow: UnitOfWork, actor_id: int | None, consultation_id: int, settings: OpinionMapSettings | None = None
) -> Outcome:
    """The consultation's outcome as the stored votes give it now; withheld while fewer than k have voted."""
    consultation = await require_exporter(uow, actor_id, consultation_id)
    community = await get_community(uow, consultation.community_id)
    counted = await figures(uow, consultation_id)
    if counted.withheld:
        return await _withheld_outcome(uow, consultation, community.name, community.timezone, counted, settings)
    matrix = await vote_matrix(uow, consultation_id)
    # The groups the last map computed (the outcome's, once closed), not a map of its own: a report must show the
    # groups the participants were told of. Without a stored memory (no map yet), the map from the votes alone.
    remembered = await map_memory(uow, consultation_id)
    opinion = matrix.opinion_map(settings, previous=remembered, advance=False)
    texts = {
        sid: (text, author is None)
        for sid, text, author in (
            await uow.session.exec(
                select(Statement.id, Statement.text, Statement.author_id).where(
                    Statement.consultation_id == consultation_id, Statement.status == StatementStatus.APPROVED
                )
            )
        ).all()
    }
    # Plain vote counts per statement over every voter (the opinion map's groups hold only the clustered ones).
    agree, disagree, passed = matrix.counts()
    statements = []
    for j, sid in enumerate(matrix.statement_ids):
        if sid in matrix.moderated_out:
            continue  # in the map's columns (as Pol.is keeps them), not among the statements put to the vote
        text, by_staff = texts[sid]
        statements.append(
            StatementOutcome(
                id=sid,
                text=text,
                by_staff=by_staff,
                overall=VoteCounts(int(agree[j]), int(disagree[j]), int(passed[j])),
                by_group=tuple(
                    VoteCounts(g.agree_counts[j], g.disagree_counts[j], g.pass_counts[j]) for g in opinion.groups
                ),
            )
        )
    groups = tuple(
        GroupOutcome(id=g.id, size=len(g.participant_ids), centre=g.centre, representative=g.representative)
        for g in opinion.groups
    )
    return await _outcome(
        uow,
        consultation,
        community.name,
        community.timezone,
        counted,
        tuple(statements),
        groups,
        _fewest_votes_placed(opinion),
        opinion,
    )


def _fewest_votes_placed(opinion: OpinionMap) -> int:
    """The votes a participant needed to be placed in a group: the map's min_votes, or fewer where the map placed
    people with fewer (as Pol.is does while fewer than 15 have that many), so that the report's note holds."""
    placed = opinion.vote_counts[opinion.group_of != NOT_CLUSTERED]
    return min(opinion.settings.min_votes, int(placed.min())) if placed.size else opinion.settings.min_votes


async def _withheld_outcome(
    uow: UnitOfWork,
    consultation: Consultation,
    community_name: str,
    timezone: str,
    counted: ConsultationFigures,
    settings: OpinionMapSettings | None,
) -> Outcome:
    """The outcome while fewer than k have voted: what was put and who took part, the statements without a count,
    no group and no opinion map (not even computed: its positions would place each voter)."""
    assert consultation.id is not None
    rows = (
        await uow.session.exec(
            select(Statement.id, Statement.text, Statement.author_id)
            .where(Statement.consultation_id == consultation.id, Statement.status == StatementStatus.APPROVED)
            .order_by(col(Statement.id))
        )
    ).all()
    statements = tuple(
        StatementOutcome(id=sid, text=text, by_staff=author is None, overall=None, by_group=())
        for sid, text, author in rows
        if sid is not None
    )
    min_votes = (settings or OpinionMapSettings()).min_votes
    return await _outcome(uow, consultation, community_name, timezone, counted, statements, (), min_votes, None)


async def _outcome(
    uow: UnitOfWork,
    consultation: Consultation,
    community_name: str,
    timezone: str,
    counted: ConsultationFigures,
    statements: tuple[StatementOutcome, ...],
    groups: tuple[GroupOutcome, ...],
    min_votes: int,
    opinion: OpinionMap | None,
) -> Outcome:
    """What is put and how it went, with the opinion map's findings where one was computed (None: withheld)."""
    assert consultation.id is not None
    return Outcome(
        consultation_id=consultation.id,
        community_id=consultation.community_id,
        community_name=community_name,
        timezone=timezone,
        title=consultation.title,
        background=consultation.background,
        language=consultation.language,
        status=consultation.status,
        eligibility=consultation.eligibility,
        audience=Scope.from_json(consultation.audience),
        allow_statements=consultation.allow_statements,
        moderated=consultation.moderated,
        opens_at=consultation.opens_at,
        closes_at=consultation.closes_at,
        opened_at=consultation.opened_at,
        closed_at=consultation.closed_at,
        computed_at=uow.clock.now(),
        min_group_size=counted.min_group_size,
        figures=counted,
        statements=statements,
        groups=groups,
        min_votes=min_votes,
        clustered=sum(group.size for group in groups),
        consensus_agree=opinion.consensus_agree if opinion else (),
        consensus_disagree=opinion.consensus_disagree if opinion else (),
        group_informed_consensus=opinion.group_informed_consensus if opinion else (),
        divisive=opinion.divisive if opinion else (),
        silhouette=opinion.silhouette if opinion else None,
        participation=await participation(uow, consultation.id, timezone),
        positions=opinion.coordinates if opinion else np.empty((0, 2), dtype=np.float64),
        group_of=opinion.group_of if opinion else np.empty(0, dtype=np.int64),
    )


# --- participation over time -----------------------------------------------------------------------------------


def _local_days(first: datetime, last: datetime, zone: ZoneInfo) -> list[date]:
    start, end = first.astimezone(zone).date(), last.astimezone(zone).date()
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _day_bucket(
    column: ColumnElement[datetime] | Mapped[datetime], days: Sequence[date], zone: ZoneInfo
) -> ColumnElement[int]:
    """The index into ``days`` of the local day a UTC timestamp falls on, computed by the database (the same
    SQL on SQLite and PostgreSQL: comparisons with each local midnight, no time-zone functions)."""
    midnights = [datetime.combine(day, time(), tzinfo=zone).astimezone(UTC) for day in days[1:]]
    if not midnights:
        return literal(0)
    return case(*((column < midnight, n) for n, midnight in enumerate(midnights)), else_=len(midnights))


async def _counts_by_day(
    uow: UnitOfWork,
    column: ColumnElement[datetime] | Mapped[datetime],
    where: ColumnElement[bool],
    days: Sequence[date],
    zone: ZoneInfo,
) -> dict[int, int]:
    bucket = _day_bucket(column, days, zone).label(_DAY)
    # Grouped in a subquery: PostgreSQL wants GROUP BY the very expression selected, and a CASE with bound
    # parameters is rendered with fresh parameter names each time it appears.
    days_of = sa_select(bucket).where(where).subquery()
    rows = (
        await uow.session.exec(sa_select(days_of.c.day, func.count()).group_by(days_of.c.day))  # type: ignore[call-overload]
    ).all()
    return {int(day): int(count) for day, count in rows}


async def participation(uow: UnitOfWork, consultation_id: int, timezone: str) -> tuple[DayActivity, ...]:
    """New participants and votes per day in the community's time zone, every day from the first activity to the
    last (days without any included, so a chart's axis is continuous)."""
    zone = ZoneInfo(timezone)
    joined = col(Participant.consultation_id) == consultation_id
    voted = (
        sa_select(col(Vote.at))
        .select_from(Vote)
        .join(Statement, col(Statement.id) == col(Vote.statement_id))
        .where(_approved_votes(consultation_id))
        .subquery()
    )
    first_joined, last_joined = (
        await uow.session.exec(
            sa_select(func.min(col(Participant.created_at)), func.max(col(Participant.created_at))).where(joined)  # type: ignore[call-overload]
        )
    ).one()
    first_vote, last_vote = (
        await uow.session.exec(sa_select(func.min(voted.c.at), func.max(voted.c.at)))  # type: ignore[call-overload]
    ).one()
    moments = [moment for moment in (first_joined, last_joined, first_vote, last_vote) if moment is not None]
    if not moments:
        return ()
    moments = [_aware(moment) for moment in moments]
    days = _local_days(min(moments), max(moments), zone)
    newcomers = await _counts_by_day(uow, col(Participant.created_at), joined, days, zone)
    votes = await _counts_by_day(
        uow,
        col(Vote.at),
        col(Vote.statement_id).in_(
            sa_select(col(Statement.id)).where(_approved_votes(consultation_id)).scalar_subquery()
        ),
        days,
        zone,
    )
    return tuple(
        DayActivity(day=day, new_participants=newcomers.get(n, 0), votes=votes.get(n, 0)) for n, day in enumerate(days)
    )


def _aware(moment: datetime) -> datetime:
    """Aggregates (min, max) bypass the column type on SQLite, which hands back naive UTC or even text."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- the raw votes -------------------------------------------------------------------------------------------------


async def vote_batches(
    uow: UnitOfWork, actor_id: int | None, consultation_id: int, batch: int = STREAM_BATCH
) -> AsyncIterator[list[VoteRecord]]:
    """Every current vote on the consultation's approved statements, by statement then participant, ``batch`` rows
    at a time (constant memory, whatever the number of votes). Pseudonyms only.

    The permission, and that at least k have voted (FiguresWithheld otherwise), are checked before the first row:
    iterate it to be refused."""
    await require_exporter(uow, actor_id, consultation_id)
    await require_figures_shown(uow, consultation_id)
    bind = uow.session.bind
    # SQLite keeps times as text, which SQLAlchemy's DateTime parses with a regular expression; read as text,
    # datetime.fromisoformat does it several times faster (millions of rows in a large export).
    as_text = bind is not None and bind.dialect.name == "sqlite"
    at_column = type_coerce(col(Vote.at), String) if as_text else col(Vote.at)
    query = (
        sa_select(at_column, col(Vote.statement_id), col(Participant.pseudonym), col(Vote.value))
        .select_from(Vote)
        .join(Participant, col(Participant.id) == col(Vote.participant_id))
        .join(Statement, col(Statement.id) == col(Vote.statement_id))
        .where(_approved_votes(consultation_id))
        .order_by(col(Vote.statement_id), col(Vote.participant_id))
        .execution_options(yield_per=batch)
    )
    result = await uow.session.stream(query)
    try:
        async for rows in result.partitions(batch):
            if as_text:
                yield [
                    VoteRecord(datetime.fromisoformat(str(at)).replace(tzinfo=UTC), statement_id, pseudonym, value)
                    for at, statement_id, pseudonym, value in rows
                ]
            else:
                yield [
                    VoteRecord(cast(datetime, at), statement_id, pseudonym, value)
                    for at, statement_id, pseudonym, value in rows
                ]
    finally:
        await result.close()


async def stream_votes(
    uow: UnitOfWork, actor_id: int | None, consultation_id: int, batch: int = STREAM_BATCH
) -> AsyncIterator[VoteRecord]:
    """vote_batches, one vote at a time."""
    async for votes in vote_batches(uow, actor_id, consultation_id, batch):
        for vote in votes:
            yield vote
