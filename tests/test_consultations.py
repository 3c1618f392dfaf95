"""Consultations: who may take part, pseudonyms, statements, moderation, votes and the figures; on both databases.

The cast lives in 梧桐社区 (buildings 3号楼 and 7号楼) under 示范街道; the neighbouring 银杏社区 has residents of its
own, who must never take part in 梧桐's consultations."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import func, inspect
from sqlmodel import col, select

from bot.consultations.jobs import register_consultation_jobs
from bot.features import DEFAULT_MANIFESTS
from bot.manifest import Features
from bot.rendering import Localizers
from bot.scheduling import JobRegistry
from bot.worker import Worker
from community.anonymity import DEFAULT_MIN_GROUP_SIZE, Anonymity
from community.clock import FakeClock
from community.communities import add_community, add_member, household
from community.errors import UnknownBuilding, ValidationFailed
from community.models import AuditEntry, Person
from community.people import identify
from community.privacy import forget
from community.roles import CommunityKind, Role
from community.scope import Scope
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory
from consultation.consultations import (
    MAX_SEEDS,
    MAX_STATEMENT,
    ConsultationDraft,
    VoteTally,
    VoteValue,
    add_statement,
    author_of,
    close_consultation,
    create,
    create_consultation,
    figures,
    get_consultation,
    matrix_tally,
    moderate,
    next_seed,
    next_statement,
    open_consultation,
    open_with_communities,
    participant_of,
    participate,
    pending_statements,
    rejection_message,
    store_priorities,
    submit_statement,
    vote,
    vote_matrix,
    votes_of,
)
from consultation.errors import (
    ClosesBeforeOpens,
    ClosingTimePassed,
    ConsultationClosed,
    ConsultationNotAllowed,
    ConsultationNotOpenYet,
    DuplicateStatement,
    EmptyStatement,
    InvalidVote,
    NotEligible,
    RejectionReasonRequired,
    StatementNotFound,
    StatementNotVotable,
    StatementsNotAllowed,
    StatementTooLong,
)
from consultation.models import (
    Consultation,
    ConsultationStatus,
    Eligibility,
    Participant,
    ParticipantLink,
    Statement,
    StatementRejection,
    StatementStatus,
    Vote,
)
from consultation.opinion_map import OpinionMapSettings, compute_opinion_map_from_cells
from consultation.outcome import compute_outcome
from tests.support.fake_scheduler import FakeScheduler
from tests.support.votes import agree_votes

B3, B7 = "3号楼", "7号楼"
KEYS = ("worker", "committee", "street", "wang", "liu", "chen", "unit", "neighbour")


@dataclass(frozen=True)
class Cast:
    wutong: int
    yinxing: int
    worker: int
    committee: int
    street: int
    wang: int  # 3号楼, household representative
    liu: int  # 3号楼, resident
    chen: int  # 7号楼, resident
    unit: int  # a resident unit's contact: a member, not a resident
    neighbour: int  # 银杏社区


async def _cast(uows: UnitOfWorkFactory, *, neighbours: int = DEFAULT_MIN_GROUP_SIZE) -> Cast:
    """The cast, with ``neighbours`` more residents (household representatives) in each of 3号楼 and 7号楼."""
    async with uows() as uow:
        street = await add_community(uow, name="示范街道", kind=CommunityKind.STREET)
        assert street.id is not None
        wutong = await add_community(uow, name="梧桐社区", kind=CommunityKind.NEIGHBOURHOOD, parent_id=street.id)
        yinxing = await add_community(uow, name="银杏社区", kind=CommunityKind.NEIGHBOURHOOD, parent_id=street.id)
        assert wutong.id is not None and yinxing.id is not None
        ids: dict[str, int] = {}
        for key in KEYS:
            identity = await identify(uow, channel="telegram", external_id=key, chat_id=key, display_name=key)
            ids[key] = identity.person_id

        async def join(key: str, community_id: int, roles: set[Role], building: str | None = None) -> None:
            household_id = None
            if building is not None:
                home = await household(uow, community_id, f"{building} {key}")
                home.building = building
                uow.session.add(home)
                household_id = home.id
            await add_member(
                uow,
                person_id=ids[key],
                community_id=community_id,
                roles=roles,
                household_id=household_id,
                reason="test",
            )

        await join("worker", wutong.id, {Role.COMMUNITY_WORKER})
        await join("committee", wutong.id, {Role.COMMITTEE_MEMBER, Role.RESIDENT}, B7)
        await join("street", street.id, {Role.STREET_ADMINISTRATOR})
        await join("wang", wutong.id, {Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}, B3)
        await join("liu", wutong.id, {Role.RESIDENT}, B3)
        await join("chen", wutong.id, {Role.RESIDENT}, B7)
        await join("unit", wutong.id, {Role.UNIT_CONTACT})
        await join("neighbour", yinxing.id, {Role.RESIDENT}, B3)
        # Neighbours who never take part, so that every audience here (a building, household representatives)
        # reaches the k = 5 people a consultation needs (community.anonymity).
        for building in (B3, B7):
            for n in range(neighbours):
                key = f"{building}-{n}"
                identity = await identify(uow, channel="telegram", external_id=key, chat_id=key, display_name=key)
                ids[key] = identity.person_id
                await join(key, wutong.id, {Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}, building)
        await uow.commit()
    return Cast(wutong=wutong.id, yinxing=yinxing.id, **{key: ids[key] for key in KEYS})


def _draft(cast: Cast, clock: FakeClock, **changes: object) -> ConsultationDraft:
    now = clock.now()
    draft = ConsultationDraft(
        community_id=cast.wutong,
        title="小区停车位改造",
        background="东门空地改建为停车位还是口袋公园？请大家发表意见。",
        language="zh_Hans",
        opens_at=now + timedelta(hours=1),
        closes_at=now + timedelta(days=7),
    )
    return replace(draft, **changes)  # type: ignore[arg-type]


async def _create(uows: UnitOfWorkFactory, actor: int, draft: ConsultationDraft) -> Consultation:
    async with uows() as uow:
        consultation = await create(uow, actor, draft)
        await uow.commit()
    return consultation


async def _open(uows: UnitOfWorkFactory, cast: Cast, clock: FakeClock, **changes: object) -> int:
    """A consultation that is open now, with two statements seeded by the worker."""
    consultation = await _create(uows, cast.worker, _draft(cast, clock, **changes))
    assert consultation.id is not None
    async with uows() as uow:
        assert await open_consultation(uow, consultation.id)
        await add_statement(uow, cast.worker, consultation.id, "东门空地应改建为停车位。")
        await add_statement(uow, cast.worker, consultation.id, "东门空地应改建为口袋公园。")
        await uow.commit()
    return consultation.id


async def _statements(uow: UnitOfWork, consultation_id: int) -> list[Statement]:
    return list(
        (
            await uow.session.exec(
                select(Statement).where(Statement.consultation_id == consultation_id).order_by(col(Statement.id))
            )
        ).all()
    )


async def _vote(uows: UnitOfWorkFactory, person: int, statement_id: int, value: VoteValue) -> None:
    async with uows() as uow:
        await vote(uow, person, statement_id, value)
        await uow.commit()


async def _count(uow: UnitOfWork, model: type[object]) -> int:
    return int((await uow.session.exec(select(func.count()).select_from(model))).one())


# --- creating, opening and closing ----------------------------------------------------------------------------


async def test_staff_and_committee_create_residents_cannot(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    for actor in (cast.worker, cast.committee, cast.street):
        consultation = await _create(uows, actor, _draft(cast, clock))
        assert consultation.status == ConsultationStatus.SCHEDULED
        assert consultation.created_by == actor
        assert consultation.eligibility == Eligibility.RESIDENTS
    for actor in (cast.wang, cast.unit, cast.neighbour):
        with pytest.raises(ConsultationNotAllowed):
            await _create(uows, actor, _draft(cast, clock))


async def test_bad_drafts_are_refused_and_nothing_is_written(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    now = clock.now()
    refused: list[tuple[ConsultationDraft, type[Exception]]] = [
        (_draft(cast, clock, closes_at=now + timedelta(minutes=30)), ClosesBeforeOpens),
        (_draft(cast, clock, opens_at=now - timedelta(days=2), closes_at=now - timedelta(days=1)), ClosingTimePassed),
        (_draft(cast, clock, audience=Scope(buildings=("99号楼",))), UnknownBuilding),
    ]
    for draft, error in refused:
        with pytest.raises(error):
            await _create(uows, cast.worker, draft)
    async with uows() as uow:
        assert await _count(uow, Consultation) == 0


async def test_the_statements_to_start_with_come_with_the_creation_or_nothing_does(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    seeds = ("东门空地应改建为停车位。", "东门空地应改建为口袋公园。")
    async with uows() as uow:
        consultation = (await create_consultation(uow, cast.worker, _draft(cast, clock), seeds)).consultation
        await uow.commit()
    assert consultation.id is not None
    async with uows() as uow:
        statements = await _statements(uow, consultation.id)
    assert tuple(statement.text for statement in statements) == seeds
    # A statement the service refuses (here a duplicate) refuses the whole creation: nothing is written.
    async with uows() as uow:
        with pytest.raises(DuplicateStatement):
            await create_consultation(uow, cast.worker, _draft(cast, clock), (seeds[0], seeds[0]))
        await uow.rollback()
    async with uows() as uow:
        assert await _count(uow, Consultation) == 1


async def test_open_and_close_are_idempotent_and_audited(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    consultation = await _create(uows, cast.worker, _draft(cast, clock))
    assert consultation.id is not None
    async with uows() as uow:
        assert await open_consultation(uow, consultation.id) is True
        assert await open_consultation(uow, consultation.id) is False
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(ConsultationNotAllowed):
            await close_consultation(uow, consultation.id, actor_id=cast.wang)
    async with uows() as uow:
        assert await close_consultation(uow, consultation.id, actor_id=cast.committee) is True
        assert await close_consultation(uow, consultation.id) is False
        assert await open_consultation(uow, consultation.id) is False  # a closed consultation stays closed
        await uow.commit()
    async with uows() as uow:
        assert (await get_consultation(uow, consultation.id)).status == ConsultationStatus.CLOSED
        entries = (
            await uow.session.exec(
                select(AuditEntry).where(AuditEntry.subject_type == "consultation").order_by(col(AuditEntry.id))
            )
        ).all()
    assert [(e.action, e.actor_id) for e in entries] == [
        ("consultation.created", cast.worker),
        ("consultation.opened", None),
        ("consultation.closed", cast.committee),
    ]
    assert json.loads(entries[2].data) == {"participants": 0, "votes": 0, "statements": 0}


async def test_creating_schedules_the_opening_and_closing_as_rows_of_its_transaction(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    scheduler = FakeScheduler(clock, JobRegistry(), uows)
    async with uows() as uow:
        rolled_back = await create_consultation(uow, cast.worker, _draft(cast, clock))
        await uow.rollback()  # nothing of it stands, its jobs neither
    assert await scheduler.handed() == {}
    async with uows() as uow:
        consultation = (await create_consultation(uow, cast.worker, _draft(cast, clock))).consultation
        await uow.commit()
    assert not rolled_back.opened and consultation.id is not None
    assert sorted((job.when, job.job, dict(job.args)) for job in (await scheduler.handed()).values()) == [
        (consultation.opens_at, "consultation.open", {"consultation_id": consultation.id}),
        (consultation.closes_at, "consultation.close", {"consultation_id": consultation.id}),
    ]


async def test_a_start_after_missed_times_opens_and_closes_what_came_due(
    uows: UnitOfWorkFactory, clock: FakeClock, localizers: Localizers
) -> None:
    cast = await _cast(uows)
    now = clock.now()
    registry = JobRegistry()
    register_consultation_jobs(registry, uows, Worker(processes=False))
    drafts = (
        _draft(cast, clock),  # opens in an hour
        _draft(cast, clock, closes_at=now + timedelta(hours=2)),
        _draft(cast, clock, opens_at=now + timedelta(days=3)),
    )
    async with uows() as uow:
        soon, missed, later = [(await create_consultation(uow, cast.worker, d)).consultation for d in drafts]
        await uow.commit()
    clock.advance(timedelta(hours=3))  # the process was down: both opening jobs and one closing job missed
    scheduler = FakeScheduler(clock, registry, uows)  # a new process: nothing handed yet
    await scheduler.start()
    await scheduler.run_due()
    await scheduler.start()  # again: nothing twice
    await scheduler.run_due()
    async with uows() as uow:
        statuses = [(await get_consultation(uow, c.id or 0)).status for c in (soon, missed, later)]
        entries = (await uow.session.exec(select(AuditEntry.action, AuditEntry.subject_id))).all()
    assert statuses == [ConsultationStatus.OPEN, ConsultationStatus.CLOSED, ConsultationStatus.SCHEDULED]
    assert sorted(subject or 0 for action, subject in entries if action == "consultation.opened") == [
        soon.id,
        missed.id,
    ]
    assert [subject for action, subject in entries if action == "consultation.closed"] == [missed.id]
    assert await scheduler.next_run(f"consultation:{later.id}:open") == later.opens_at


# --- who takes part, under which name -------------------------------------------------------------------------


async def test_only_eligible_members_in_the_audience_take_part(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock, audience=Scope(buildings=(B3,)))
    async with uows() as uow:
        assert await participate(uow, cast.wang, consultation_id)
        assert await participate(uow, cast.liu, consultation_id)
        for outsider in (cast.chen, cast.neighbour, cast.worker):  # 7号楼; another community; no household
            with pytest.raises(NotEligible):
                await participate(uow, outsider, consultation_id)
        await uow.commit()

    everyone = await _open(uows, cast, clock, title="垃圾分类")
    async with uows() as uow:
        await participate(uow, cast.chen, everyone)
        with pytest.raises(NotEligible):  # a unit's contact is a member, but not a resident
            await participate(uow, cast.unit, everyone)

    households = await _open(uows, cast, clock, title="物业费", eligibility=Eligibility.HOUSEHOLD_REPRESENTATIVES)
    async with uows() as uow:
        await participate(uow, cast.wang, households)
        with pytest.raises(NotEligible):
            await participate(uow, cast.liu, households)

    async def listed(person: int) -> list[int | None]:
        async with uows() as uow:
            return [c.id for c, _ in await open_with_communities(uow, person)]

    assert await listed(cast.wang) == [consultation_id, everyone, households]
    assert await listed(cast.liu) == [consultation_id, everyone]
    assert await listed(cast.chen) == [everyone]
    assert await listed(cast.neighbour) == []
    async with uows() as uow:  # the list names each one's community, read with it
        named = [(c.id, community.name) for c, community in await open_with_communities(uow, cast.wang)]
    assert named == [(consultation_id, "梧桐社区"), (everyone, "梧桐社区"), (households, "梧桐社区")]
    clock.advance(timedelta(days=8))  # past their closing time, before the job that closes them ran
    assert await listed(cast.wang) == []


async def test_pseudonyms_are_stable_per_consultation_and_differ_across(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    first = await _open(uows, cast, clock)
    second = await _open(uows, cast, clock, title="垃圾分类")
    async with uows() as uow:
        mine = await participate(uow, cast.wang, first)
        await uow.commit()
    async with uows() as uow:
        again = await participate(uow, cast.wang, first)
        elsewhere = await participate(uow, cast.wang, second)
        other = await participate(uow, cast.liu, first)
        await uow.commit()
    assert again.pseudonym == mine.pseudonym and again.id == mine.id
    assert elsewhere.pseudonym != mine.pseudonym
    assert other.pseudonym != mine.pseudonym


async def test_votes_are_stored_without_person_ids(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        parking, park = await _statements(uow, consultation_id)
    await _vote(uows, cast.wang, parking.id or 0, VoteValue.AGREE)
    await _vote(uows, cast.liu, park.id or 0, VoteValue.DISAGREE)

    for model in (Vote, Participant, Statement):
        columns = {column.name for column in inspect(model).columns}
        assert not columns & {"person_id", "actor_id", "account_id"}, model
    async with uows() as uow:
        matrix = await vote_matrix(uow, consultation_id)
        wang = await participant_of(uow, cast.wang, consultation_id)
        liu = await participant_of(uow, cast.liu, consultation_id)
    assert wang is not None and liu is not None
    assert matrix.participants == (wang.pseudonym, liu.pseudonym)
    assert matrix.statement_ids == (parking.id, park.id)
    assert np.array_equal(matrix.votes, np.array([[1.0, np.nan], [np.nan, -1.0]]), equal_nan=True)
    assert str(cast.wang) not in matrix.participants


async def test_forgetting_a_person_withdraws_their_open_votes_and_keeps_closed_ones_leading_nowhere(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    closing = await _open(uows, cast, clock)
    running = await _open(uows, cast, clock, title="垃圾分类")
    async with uows() as uow:
        parking, _ = await _statements(uow, closing)
        sorting, _ = await _statements(uow, running)
    for person in (cast.liu, cast.wang):
        await _vote(uows, person, parking.id or 0, VoteValue.AGREE)
        await _vote(uows, person, sorting.id or 0, VoteValue.AGREE)
    async with uows() as uow:
        assert await close_consultation(uow, closing)
        await uow.commit()
    async with uows() as uow:
        await forget(uow, cast.liu, Features.of(DEFAULT_MANIFESTS).erasers)
        await uow.commit()
    async with uows() as uow:
        assert await uow.session.get(Person, cast.liu) is None
        assert await _count(uow, ParticipantLink) == 2  # 王芳's
        # Closed: the outcome stands, her vote under a pseudonym that leads to no one. Open: withdrawn.
        assert await agree_votes(uow, closing) == 2
        assert await agree_votes(uow, running) == 1
        assert (await figures(uow, running)).participants == 1


async def _neighbour(uows: UnitOfWorkFactory, key: str) -> int:
    """A neighbour of the cast (_cast makes them: "3号楼-0" and so on), by their account."""
    async with uows() as uow:
        identity = await identify(uow, channel="telegram", external_id=key, chat_id=key, display_name=key)
        await uow.commit()
    return identity.person_id


async def test_the_vote_matrix_holds_the_votes_of_statements_moderated_out_after_they_were_cast(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """The approved statements, and those rejected after votes were cast on them (moderated_out), as Pol.is keeps
    them; a statement rejected before any vote, or still pending, is no column. The counts shown leave the
    moderated-out votes out, as the figures do."""
    uows = UnitOfWorkFactory(uows.sessions, uows.clock, uows.key, Anonymity(min_group_size=2), renderers=uows.renderers)
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        parking, park = await _statements(uow, consultation_id)
        taken_out = await add_statement(uow, cast.worker, consultation_id, "两者兼顾，一半停车一半绿地。")
        never_voted = await add_statement(uow, cast.worker, consultation_id, "维持现状。")
        pending = await submit_statement(uow, cast.chen, consultation_id, "增加电动车充电桩。")
        await uow.commit()
    assert taken_out.id is not None and never_voted.id is not None and pending.id is not None
    await _vote(uows, cast.wang, parking.id or 0, VoteValue.AGREE)
    await _vote(uows, cast.wang, taken_out.id, VoteValue.DISAGREE)
    await _vote(uows, cast.liu, park.id or 0, VoteValue.PASS)
    await _vote(uows, cast.chen, taken_out.id, VoteValue.AGREE)  # chen's only vote
    async with uows() as uow:
        for statement_id in (taken_out.id, never_voted.id):
            await moderate(uow, cast.worker, statement_id, approve=False, reason=StatementRejection.OFF_TOPIC)
        await uow.commit()

    async with uows() as uow:
        matrix = await vote_matrix(uow, consultation_id)
        counted = await figures(uow, consultation_id)
        # In the order they joined: chen first, with the statement still pending.
        pseudonyms = [await participant_of(uow, person, consultation_id) for person in (cast.chen, cast.wang, cast.liu)]
    assert matrix.participants == tuple(p.pseudonym for p in pseudonyms if p is not None)
    assert matrix.statement_ids == (parking.id, park.id, taken_out.id)
    assert matrix.moderated_out == frozenset({taken_out.id})
    expected = np.array([[np.nan, np.nan, 1.0], [1.0, np.nan, -1.0], [np.nan, 0.0, np.nan]])
    assert np.array_equal(matrix.votes, expected, equal_nan=True)
    assert [a.dtype.name for a in (matrix.rows, matrix.columns, matrix.values)] == ["int32", "int32", "int8"]
    # The counts of the approved statements only, as the figures (chen voted on none of them).
    assert matrix_tally(matrix) == VoteTally(voters=2, agree=1, disagree=0, passed=1)
    assert (counted.voters, counted.agree, counted.disagree, counted.passed) == (2, 1, 0, 1)


async def test_a_statement_moderated_out_counts_toward_the_clustering_threshold_and_is_never_a_finding(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """Seven voters on eight statements, two blocs; every one agrees with the last, which a moderator then takes
    out. Chen voted on six others and on it: seven votes, clustered (Pol.is counts the votes cast on it). It is
    no consensus, no group's representative statement, no statement of the outcome, and has no importance. (Pol.is's
    greedy clustering of the most active voters of a young map is off here: it would cluster chen regardless.)"""
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    texts = [f"第{n}条：东门空地的第{n}种用法。" for n in range(6)]
    async with uows() as uow:
        for text in texts:
            await add_statement(uow, cast.worker, consultation_id, text)
        await uow.commit()
        statements = await _statements(uow, consultation_id)
    ids = [s.id or 0 for s in statements]
    taken_out = ids[-1]
    voters = [cast.wang, cast.liu, cast.committee] + [await _neighbour(uows, f"{B3}-{n}") for n in range(3)]
    for number, person in enumerate(voters):
        bloc = number % 2 == 0
        for position, statement_id in enumerate(ids[:-1]):
            agrees = (position % 2 == 0) == bloc
            await _vote(uows, person, statement_id, VoteValue.AGREE if agrees else VoteValue.DISAGREE)
        await _vote(uows, person, taken_out, VoteValue.AGREE)
    for statement_id in ids[:6]:
        await _vote(uows, cast.chen, statement_id, VoteValue.AGREE if ids.index(statement_id) % 2 else VoteValue.PASS)
    await _vote(uows, cast.chen, taken_out, VoteValue.AGREE)
    async with uows() as uow:
        await moderate(uow, cast.worker, taken_out, approve=False, reason=StatementRejection.REPEATS_ANOTHER)
        await uow.commit()

    async with uows() as uow:
        matrix = await vote_matrix(uow, consultation_id)
        chen = await participant_of(uow, cast.chen, consultation_id)
        outcome = await compute_outcome(uow, cast.worker, consultation_id)
    assert chen is not None
    assert matrix.moderated_out == frozenset({taken_out}) and matrix.statement_ids == tuple(ids)
    settings = OpinionMapSettings(greedy_participants=0)
    found = matrix.opinion_map(settings)
    assert int(found.vote_counts[found.participant_ids.index(chen.pseudonym)]) == 7
    assert found.group_of_participant(chen.pseudonym) is not None
    assert len(found.groups) == 2
    findings = [
        *(c.statement_id for c in found.consensus_agree + found.consensus_disagree),
        *(r.statement_id for g in found.groups for r in g.representative),
        *(c.statement_id for c in found.group_informed_consensus),
        *(d.statement_id for d in found.divisive),
    ]
    assert findings and taken_out not in findings
    assert found.statement_importance[ids.index(taken_out)] == 0.0
    assert taken_out not in {s.id for s in outcome.statements}
    assert [s.id for s in outcome.statements] == ids[:-1]
    # Without it the map would not reach chen: six votes are too few.
    kept = matrix.columns != ids.index(taken_out)
    alone = compute_opinion_map_from_cells(
        matrix.rows[kept],
        matrix.columns[kept],
        matrix.values[kept],
        matrix.participants,
        matrix.statement_ids,
        settings,
    )
    assert alone.group_of_participant(chen.pseudonym) is None


# --- statements ----------------------------------------------------------------------------------------------


async def test_statements_are_length_checked_and_duplicates_point_to_the_existing_one(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        parking, _ = await _statements(uow, consultation_id)
        with pytest.raises(StatementTooLong) as too_long:
            await submit_statement(uow, cast.wang, consultation_id, "停" * (MAX_STATEMENT + 1))
        assert too_long.value.params == {"limit": MAX_STATEMENT, "length": MAX_STATEMENT + 1}
        with pytest.raises(EmptyStatement):
            await submit_statement(uow, cast.wang, consultation_id, "   ")
        with pytest.raises(DuplicateStatement) as duplicate:
            await submit_statement(uow, cast.wang, consultation_id, "  东门空地应改建为停车位。 ")
        assert duplicate.value.statement_id == parking.id
        assert duplicate.value.params == {"statement_id": parking.id}
        longest = await submit_statement(uow, cast.wang, consultation_id, "  " + "树" * MAX_STATEMENT + "\n")
        assert longest.text == "树" * MAX_STATEMENT
        await uow.commit()
    async with uows() as uow:
        trees = await add_statement(uow, cast.worker, consultation_id, "Plant more  trees by the east gate.")
        with pytest.raises(DuplicateStatement) as again:  # blanks and case do not make it new
            await submit_statement(uow, cast.chen, consultation_id, " plant MORE trees by the east gate. ")
        assert again.value.statement_id == trees.id
        assert len(await _statements(uow, consultation_id)) == 4


async def test_moderated_statements_wait_and_rejections_carry_a_reason(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        good = await submit_statement(uow, cast.wang, consultation_id, "停车位应优先给本小区住户。")
        bad = await submit_statement(uow, cast.liu, consultation_id, "三号楼的老王天天乱停车。")
        await uow.commit()
    assert (good.status, bad.status) == (StatementStatus.PENDING, StatementStatus.PENDING)
    async with uows() as uow:
        assert [s.id for s in await pending_statements(uow, consultation_id)] == [good.id, bad.id]
        with pytest.raises(StatementNotVotable):  # not yet approved
            await vote(uow, cast.chen, good.id or 0, VoteValue.AGREE)
        with pytest.raises(ConsultationNotAllowed):
            await moderate(uow, cast.chen, good.id or 0, approve=True)
        with pytest.raises(RejectionReasonRequired):
            await moderate(uow, cast.worker, bad.id or 0, approve=False)
        await moderate(uow, cast.worker, good.id or 0, approve=True)
        rejected = await moderate(
            uow, cast.committee, bad.id or 0, approve=False, reason=StatementRejection.PERSONAL_DATA
        )
        await moderate(uow, cast.committee, bad.id or 0, approve=False, reason=StatementRejection.PERSONAL_DATA)
        await uow.commit()
    assert rejected.rejection_reason == StatementRejection.PERSONAL_DATA
    assert rejection_message(StatementRejection.PERSONAL_DATA) == "It names people or holds personal data."
    async with uows() as uow:
        assert await author_of(uow, bad.id or 0) == cast.liu
        assert await pending_statements(uow, consultation_id) == []
        await vote(uow, cast.chen, good.id or 0, VoteValue.AGREE)
        with pytest.raises(StatementNotVotable):
            await vote(uow, cast.chen, bad.id or 0, VoteValue.AGREE)
        moderated = (
            await uow.session.exec(select(AuditEntry).where(AuditEntry.action == "consultation.statement_moderated"))
        ).all()
    assert [json.loads(e.data)["reason"] for e in moderated] == [None, "personal_data"]  # the repeat changed nothing


async def test_unmoderated_statements_are_approved_and_closed_ones_take_none(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    free = await _open(uows, cast, clock, moderated=False)
    votes_only = await _open(uows, cast, clock, title="垃圾分类", allow_statements=False)
    async with uows() as uow:
        statement = await submit_statement(uow, cast.wang, free, "晚上十点后禁止施工。")
        assert statement.status == StatementStatus.APPROVED
        assert await author_of(uow, statement.id or 0) == cast.wang
        with pytest.raises(StatementsNotAllowed):
            await submit_statement(uow, cast.wang, votes_only, "晚上十点后禁止施工。")


# --- votes ---------------------------------------------------------------------------------------------------


async def test_a_vote_can_be_changed_until_the_close(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        parking, _ = await _statements(uow, consultation_id)
    await _vote(uows, cast.wang, parking.id or 0, VoteValue.AGREE)
    clock.advance(timedelta(hours=2))
    await _vote(uows, cast.wang, parking.id or 0, VoteValue.DISAGREE)
    async with uows() as uow:
        assert await votes_of(uow, cast.wang, consultation_id) == {parking.id: VoteValue.DISAGREE}
        stored = (await uow.session.exec(select(Vote))).all()
        with pytest.raises(InvalidVote):
            await vote(uow, cast.wang, parking.id or 0, 2)
        with pytest.raises(StatementNotFound):
            await vote(uow, cast.wang, 999_999, VoteValue.AGREE)
    assert [(v.value, v.at) for v in stored] == [(-1, clock.now())]


async def test_no_vote_before_the_opening_or_after_the_close(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    consultation = await _create(uows, cast.worker, _draft(cast, clock))
    assert consultation.id is not None
    async with uows() as uow:
        seeded = await add_statement(uow, cast.worker, consultation.id, "东门空地应改建为停车位。")
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(ConsultationNotOpenYet):
            await vote(uow, cast.wang, seeded.id or 0, VoteValue.AGREE)
        with pytest.raises(ConsultationNotOpenYet):
            await submit_statement(uow, cast.wang, consultation.id, "建口袋公园。")
    async with uows() as uow:
        await open_consultation(uow, consultation.id)
        await uow.commit()
    await _vote(uows, cast.wang, seeded.id or 0, VoteValue.AGREE)

    clock.set(consultation.closes_at)  # the close job has not run yet: the closing time still holds
    async with uows() as uow:
        with pytest.raises(ConsultationClosed):
            await vote(uow, cast.wang, seeded.id or 0, VoteValue.PASS)
        await close_consultation(uow, consultation.id)
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(ConsultationClosed):
            await vote(uow, cast.liu, seeded.id or 0, VoteValue.PASS)
        with pytest.raises(ConsultationClosed):
            await add_statement(uow, cast.worker, consultation.id, "新的说法。")
        with pytest.raises(ConsultationClosed):  # the outcome counts the statements as they stood
            await moderate(uow, cast.worker, seeded.id or 0, approve=False, reason=StatementRejection.OTHER)
        assert await votes_of(uow, cast.wang, consultation.id) == {seeded.id: VoteValue.AGREE}
        assert await _count(uow, Vote) == 1


async def test_two_taps_at_once_leave_one_vote(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    """Two units of work at once (truly concurrent on PostgreSQL): one participant, one vote row."""
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        parking, _ = await _statements(uow, consultation_id)

    async def tap(value: VoteValue) -> None:
        async with uows() as uow:
            await vote(uow, cast.wang, parking.id or 0, value)
            await uow.commit()

    await asyncio.gather(tap(VoteValue.AGREE), tap(VoteValue.AGREE))
    async with uows() as uow:
        assert await _count(uow, Vote) == 1
        assert await _count(uow, Participant) == 1
        assert await _count(uow, ParticipantLink) == 1
        assert (await figures(uow, consultation_id)).votes == 1


# --- the order of statements, figures ---------------------------------------------------------------------------


async def test_next_statement_prefers_few_votes_then_priority(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        third = await add_statement(uow, cast.worker, consultation_id, "两者兼顾，一半停车一半绿地。")
        await uow.commit()
        first, second, _ = await _statements(uow, consultation_id)
    await _vote(uows, cast.liu, first.id or 0, VoteValue.AGREE)
    await _vote(uows, cast.chen, first.id or 0, VoteValue.AGREE)
    await _vote(uows, cast.chen, third.id or 0, VoteValue.DISAGREE)

    async with uows() as uow:
        me = await participate(uow, cast.wang, consultation_id)
        await uow.commit()
    assert me.id is not None

    async def upcoming() -> int | None:
        async with uows() as uow:
            found = await next_statement(uow, me.id or 0, consultation_id)
        return found.id if found is not None else None

    async def mapped(priorities: dict[int | None, float]) -> None:
        async with uows() as uow:
            assert await store_priorities(uow, consultation_id, [k or 0 for k in priorities], [*priorities.values()])
            await uow.commit()

    assert await upcoming() == second.id  # no votes yet
    # A previous map found the first statement tells groups apart: it comes first despite its two votes.
    await mapped({first.id: 5.0, second.id: 1.0, third.id: 1.0})
    assert await upcoming() == first.id
    # Equal scores: the older statement.
    await mapped({first.id: 1.0, second.id: 1.0, third.id: 1.0})
    assert await upcoming() == second.id
    await _vote(uows, cast.wang, second.id or 0, VoteValue.PASS)
    assert await upcoming() == third.id  # one vote before two
    await _vote(uows, cast.wang, third.id or 0, VoteValue.PASS)
    await _vote(uows, cast.wang, first.id or 0, VoteValue.PASS)
    assert await upcoming() is None  # every statement voted on


async def test_figures_count_without_saying_who(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    # Two voters: shown with k = 2 here (the default k = 5 withholds them: test_consultation_anonymity).
    uows = UnitOfWorkFactory(uows.sessions, uows.clock, uows.key, Anonymity(min_group_size=2), renderers=uows.renderers)
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        parking, park = await _statements(uow, consultation_id)
        pending = await submit_statement(uow, cast.chen, consultation_id, "增加电动车充电桩。")
        rejected = await submit_statement(uow, cast.chen, consultation_id, "别讨论了。")
        await moderate(uow, cast.worker, rejected.id or 0, approve=False, reason=StatementRejection.OFF_TOPIC)
        await uow.commit()
    await _vote(uows, cast.wang, parking.id or 0, VoteValue.AGREE)
    await _vote(uows, cast.wang, park.id or 0, VoteValue.DISAGREE)
    await _vote(uows, cast.liu, parking.id or 0, VoteValue.PASS)
    async with uows() as uow:
        counted = await figures(uow, consultation_id)
    assert pending.status == StatementStatus.PENDING
    assert (counted.participants, counted.voters, counted.votes) == (3, 2, 3)  # chen wrote but did not vote
    assert (counted.agree, counted.disagree, counted.passed) == (1, 1, 1)
    assert (counted.pending, counted.approved, counted.rejected) == (1, 2, 1)


def test_seed_statements_are_checked_before_the_consultation_exists() -> None:
    """What a worker types to start a consultation with: trimmed, length-checked, no repeat, at most MAX_SEEDS."""
    assert next_seed([], "  A shed keeps bicycles dry.  ") == "A shed keeps bicycles dry."
    with pytest.raises(ValidationFailed) as repeated:
        next_seed(["Keep the trees.", "A shed keeps bicycles dry."], "a shed  keeps BICYCLES dry.")
    assert repeated.value.params == {"number": 2}
    with pytest.raises(EmptyStatement):
        next_seed([], "   ")
    with pytest.raises(StatementTooLong):
        next_seed([], "x" * (MAX_STATEMENT + 1))
    with pytest.raises(ValidationFailed) as too_many:
        next_seed([f"Statement {i}" for i in range(MAX_SEEDS)], "One more")
    assert too_many.value.message == "That is enough to start with: residents add the rest. Tap Done."
