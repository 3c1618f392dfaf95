"""k, the smallest group whose votes Linli shows (community.anonymity), on both databases.

梧桐社区 has a community worker and six residents: 居民1 lives alone in 9号楼, the five others in 1号楼. A
consultation for 9号楼 would be an audience of one: refused, in chat and by the service, with the reason and k. A
consultation for everyone is put to them with four statements; while four have voted, the worker's figures, the
CSV of votes, the opinion groups and the participants' outcome say why they are withheld; once the fifth has voted,
they are shown. A k set for the units of work (LINLI_MIN_GROUP_SIZE) moves every line. The statement the opinion
groups split on most is named to participants only when every group has k members."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import col, func, select

import consultation.consultations as consultations_module
from bot.channels.console import ConsoleSession, ConsoleUser
from bot.consultations.buttons import ExportFormat
from bot.consultations.jobs import map_findings, refresh_priorities, send_outcome
from bot.exports.consultation import export_consultation, outcome_document, outcome_sheets, report_html
from bot.rendering import Localizer, Localizers
from bot.worker import Worker
from community.anonymity import Anonymity
from community.clock import FakeClock
from community.communities import add_community, add_member, household
from community.models import AuditEntry
from community.notice_models import OutboxMessage
from community.people import identify
from community.roles import CommunityKind, Role
from community.scope import Scope
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import (
    ConsultationDraft,
    ConsultationFigures,
    VoteMatrix,
    VoteTally,
    VoteValue,
    add_statement,
    close_consultation,
    create,
    figures,
    open_consultation,
    staff_figures,
    store_tally,
    vote,
)
from consultation.errors import AudienceTooSmall, FiguresWithheld
from consultation.models import Consultation
from consultation.opinion_map import OpinionMapSettings
from consultation.outcome import compute_outcome, stream_votes
from tests.support.console import buttons as _buttons
from tests.support.console import script as _script
from tests.support.console import tap as _tap

COMMUNITY = "梧桐社区"
ALONE, SHARED = "9号楼", "1号楼"
WORKER = ConsoleUser("worker", "李娜", "en")
RESIDENTS = tuple(ConsoleUser(f"r{n}", f"居民{n}", "en") for n in range(1, 7))
STATEMENTS = ("A shed keeps bicycles dry.", "Racks are enough.", "The lawn matters more.", "Ask building 3 first.")
# Placed in an opinion group from two votes on, so that five voters in two blocs form groups.
MAP = OpinionMapSettings(min_votes=2)
WITHHELD = "Shown once at least 5 people have voted, so that no one's votes can be told (voters so far: 4)."


@dataclass(frozen=True)
class World:
    community_id: int
    worker: int
    residents: tuple[int, ...]  # 居民1 (9号楼 alone), then 居民2..6 (1号楼)


@pytest.fixture
async def world(uows: UnitOfWorkFactory) -> World:
    async with uows() as uow:
        wutong = await add_community(uow, name=COMMUNITY, kind=CommunityKind.NEIGHBOURHOOD)
        assert wutong.id is not None
        ids: list[int] = []
        for n, user in enumerate((WORKER, *RESIDENTS)):
            me = await identify(
                uow,
                channel="console",
                external_id=user.key,
                chat_id=user.key,
                display_name=user.name,
                language_code="en",
            )
            ids.append(me.person_id)
            home_id = None
            if user is not WORKER:
                home = await household(uow, wutong.id, f"{ALONE if user.key == 'r1' else SHARED} {n}01")
                home.building = ALONE if user.key == "r1" else SHARED
                uow.session.add(home)
                home_id = home.id
            roles = {Role.COMMUNITY_WORKER} if user is WORKER else {Role.RESIDENT}
            await add_member(
                uow, person_id=me.person_id, community_id=wutong.id, roles=roles, household_id=home_id, reason="test"
            )
        await uow.commit()
    return World(wutong.id, ids[0], tuple(ids[1:]))


@pytest.fixture
def session(console: Callable[[Sequence[ConsoleUser]], ConsoleSession], world: World) -> ConsoleSession:
    return console((WORKER, *RESIDENTS))


def _draft(world: World, clock: FakeClock, audience: Scope = Scope()) -> ConsultationDraft:  # noqa: B008
    return ConsultationDraft(
        community_id=world.community_id,
        title="A bicycle shed?",
        background="Part of the lawn could become a shed.",
        language="en",
        opens_at=clock.now(),
        closes_at=clock.now() + timedelta(days=7),
        audience=audience,
    )


async def _consultation(uows: UnitOfWorkFactory, world: World, clock: FakeClock) -> tuple[int, list[int]]:
    """A consultation for everyone, open, with four statements: its id and theirs."""
    async with uows() as uow:
        consultation = await create(uow, world.worker, _draft(world, clock))
        assert consultation.id is not None
        assert await open_consultation(uow, consultation.id)
        statements = [(await add_statement(uow, world.worker, consultation.id, text)).id or 0 for text in STATEMENTS]
        await uow.commit()
    return consultation.id, statements


async def _votes(uows: UnitOfWorkFactory, people: Sequence[int], statements: Sequence[int], value: VoteValue) -> None:
    for person in people:
        for statement in statements:
            async with uows() as uow:
                await vote(uow, person, statement, value)
                await uow.commit()


async def _consultations(uows: UnitOfWorkFactory) -> int:
    async with uows() as uow:
        return int((await uow.session.exec(select(func.count()).select_from(Consultation))).one())


# --- the audience ----------------------------------------------------------------------------------------------


async def test_a_consultation_for_an_audience_of_one_is_refused_in_chat(
    session: ConsoleSession, uows: UnitOfWorkFactory
) -> None:
    out = await _script(session, "/as worker", "/newconsultation")
    assert out[0] == f"New consultation in {COMMUNITY}"
    out = await session.feed("A bicycle shed?")
    out = await session.feed("Part of the lawn could become a shed.")
    out = await _tap(session, out, "Buildings ›", ALONE, "‹ Back", "Next ›", "Preview ›")
    # The preview says who it reaches and why it cannot be created: no Create button.
    assert "1 person would be invited now." in out
    assert (
        "Audience now: 1. A consultation needs an audience of at least 5 people, so that no one's votes can be "
        "told from its figures. Choose more buildings or residents' groups, or the whole community."
    ) in out
    assert "Create" not in _buttons(out)
    # The whole community reaches six: Create is offered.
    out = await _tap(session, out, "Edit", "Who it is for", "Whole community", "Next ›", "Preview ›")
    assert "6 people would be invited now." in out and "Create it?" in out
    assert not any("Audience now" in line for line in out)
    assert _buttons(out)[-3:] == ["Create", "Edit", "Cancel"]
    out = await _tap(session, out, "Cancel")
    assert await _consultations(uows) == 0


async def test_the_service_refuses_an_audience_below_k_and_writes_nothing(
    uows: UnitOfWorkFactory, world: World, clock: FakeClock
) -> None:
    with pytest.raises(AudienceTooSmall) as refused:
        async with uows() as uow:
            await create(uow, world.worker, _draft(world, clock, Scope(buildings=(ALONE,))))
    assert refused.value.params == {"audience": 1, "k": 5}
    async with uows() as uow:
        audited = (
            await uow.session.exec(select(AuditEntry.id).where(AuditEntry.action == "consultation.created"))
        ).all()
    assert await _consultations(uows) == 0 and audited == []
    async with uows() as uow:  # 1号楼: five residents, exactly k
        await create(uow, world.worker, _draft(world, clock, Scope(buildings=(SHARED,))))
        await uow.commit()
    assert await _consultations(uows) == 1


async def test_the_setting_changes_k_for_the_audience(uows: UnitOfWorkFactory, world: World, clock: FakeClock) -> None:
    six = UnitOfWorkFactory(uows.sessions, uows.clock, uows.key, Anonymity(min_group_size=6), renderers=uows.renderers)
    with pytest.raises(AudienceTooSmall) as refused:
        async with six() as uow:
            await create(uow, world.worker, _draft(world, clock, Scope(buildings=(SHARED,))))
    assert refused.value.params == {"audience": 5, "k": 6}
    async with six() as uow:
        await create(uow, world.worker, _draft(world, clock))  # everyone: six residents
        await uow.commit()
    assert await _consultations(uows) == 1


# --- the figures -----------------------------------------------------------------------------------------------


async def test_figures_votes_and_groups_are_withheld_at_four_voters_and_shown_at_five(
    session: ConsoleSession,
    uows: UnitOfWorkFactory,
    world: World,
    clock: FakeClock,
    localizers: Localizers,
    en: Localizer,
    tmp_path: Path,
) -> None:
    consultation_id, statements = await _consultation(uows, world, clock)
    bloc_a, bloc_b = world.residents[1:4], world.residents[4:6]
    await _votes(uows, bloc_a, statements, VoteValue.AGREE)
    await _votes(uows, bloc_b[:1], statements, VoteValue.DISAGREE)

    # Four voters: the worker sees how many took part and voted, not how.
    out = await _script(session, "/as worker", "/consultations")
    assert "Participants: 4, of whom 4 voted" in out
    assert (
        "Votes: 16 (agree, disagree and pass are shown once at least 5 people have voted, so that no one's votes "
        "can be told)"
    ) in out
    assert not any("agree 12" in line for line in out)
    # The CSV of votes per pseudonym is refused with the reason; no file.
    out = await _tap(session, out, "Votes (CSV)")
    assert WITHHELD in out
    assert not (tmp_path / "files").exists() or not any((tmp_path / "files").iterdir())
    async with uows() as uow:
        with pytest.raises(FiguresWithheld):
            await anext(stream_votes(uow, world.worker, consultation_id))
        counted = await figures(uow, consultation_id)
        outcome = await compute_outcome(uow, world.worker, consultation_id, MAP)
    assert (counted.voters, counted.votes, counted.agree, counted.disagree, counted.passed) == (4, 16, None, None, None)
    assert outcome.withheld and outcome.groups == () and outcome.positions.shape[0] == 0
    assert [s.overall for s in outcome.statements] == [None] * 4 and all(s.by_group == () for s in outcome.statements)
    # The files for the committee: no count, group or vote, and the reason in their place.
    document = json.loads(json.dumps(outcome_document(outcome), default=str))
    assert document["withheld"] is True and document["min_group_size"] == 5
    assert document["figures"]["agree"] is None and document["groups"] == []
    assert all(s["overall"] is None and s["groups"] == [] for s in document["statements"])
    sheets = outcome_sheets(outcome, en, [])
    assert [sheet.name for sheet in sheets] == ["Summary", "Statements", "Participation"]
    assert WITHHELD in sheets[0].preface and WITHHELD in sheets[1].preface
    html = report_html(outcome, en)
    assert WITHHELD.replace("'", "&#39;") in html and "Opinion map" not in html and "Agree: " not in html

    # The fifth voter: every figure is shown.
    await _votes(uows, bloc_b[1:], statements, VoteValue.DISAGREE)
    out = await session.feed("/consultations")
    assert "Votes: 20 (agree 12, disagree 8, pass 0)" in out
    buffer = io.BytesIO()
    async with uows() as uow:
        await export_consultation(uow, world.worker, consultation_id, ExportFormat.CSV, en, buffer)
        outcome = await compute_outcome(uow, world.worker, consultation_id, MAP)
    rows = list(csv.reader(io.StringIO(buffer.getvalue().decode())))
    assert len(rows) == 1 + 20 and len({row[3] for row in rows[1:]}) == 5
    assert not outcome.withheld and len(outcome.groups) >= 2
    assert outcome.statement(statements[0]).overall is not None
    assert sum(counts.seen for counts in outcome.statement(statements[0]).by_group) == 5
    assert [sheet.name for sheet in outcome_sheets(outcome, en, [])][-1] == "Votes"

    # The participants' outcome at the close tells the map's findings, as five voted.
    async with uows() as uow:
        assert await close_consultation(uow, consultation_id, world.worker)
        await uow.commit()
    assert await send_outcome(uows, consultation_id, Worker(processes=False)) == 5
    async with uows() as uow:
        texts = (await uow.session.exec(select(OutboxMessage.text).order_by(col(OutboxMessage.id)))).all()
    assert all("groups of opinion" in text for text in texts)
    assert not any("not broken down" in text for text in texts)


async def test_the_outcome_at_the_close_tells_no_finding_below_k(
    uows: UnitOfWorkFactory, world: World, clock: FakeClock, localizers: Localizers
) -> None:
    consultation_id, statements = await _consultation(uows, world, clock)
    await _votes(uows, world.residents[1:4], statements, VoteValue.AGREE)
    await _votes(uows, world.residents[4:5], statements, VoteValue.DISAGREE)
    async with uows() as uow:
        assert await close_consultation(uow, consultation_id, world.worker)
        await uow.commit()
    assert await send_outcome(uows, consultation_id, Worker(processes=False)) == 4
    async with uows() as uow:
        texts = (await uow.session.exec(select(OutboxMessage.text).order_by(col(OutboxMessage.id)))).all()
    assert len(texts) == 4
    for text in texts:
        assert "4 people took part." in text
        assert (
            "The votes are not broken down: that needs at least 5 voters, so that no one's votes can be told." in text
        )
        assert "group" not in text and "Most agreed on" not in text and STATEMENTS[0] not in text


async def test_the_setting_changes_k_for_the_figures(uows: UnitOfWorkFactory, world: World, clock: FakeClock) -> None:
    four = UnitOfWorkFactory(uows.sessions, uows.clock, uows.key, Anonymity(min_group_size=4), renderers=uows.renderers)
    consultation_id, statements = await _consultation(four, world, clock)
    await _votes(four, world.residents[1:4], statements, VoteValue.AGREE)
    async with four() as uow:
        assert (await figures(uow, consultation_id)).withheld  # three voters
    await _votes(four, world.residents[4:5], statements, VoteValue.PASS)
    async with four() as uow:
        counted = await figures(uow, consultation_id)
        first = await anext(stream_votes(uow, None, consultation_id))
    assert (counted.agree, counted.disagree, counted.passed) == (12, 0, 4)
    assert first.statement_id == statements[0]
    async with uows() as uow:  # the same votes under the default k = 5: withheld
        assert (await figures(uow, consultation_id)).withheld


def test_the_outcome_names_the_most_divisive_statement_only_when_every_group_reaches_k() -> None:
    """Seven voters on eight statements, five in one bloc and two in the other: the groups split on the first
    statement, but naming it tells how the group of two voted. At k = 5 it is not named; at k = 2 it is."""
    bloc_a, bloc_b = [1.0] * 4 + [-1.0] * 4, [-1.0] * 4 + [1.0] * 4
    matrix = VoteMatrix.from_dense(
        participants=[f"p{n}" for n in range(7)],
        statement_ids=range(1, 9),
        votes=np.array([bloc_a] * 5 + [bloc_b] * 2),
    )
    counted = ConsultationFigures(
        participants=7,
        voters=7,
        votes=56,
        agree=28,
        disagree=28,
        passed=0,
        pending=0,
        approved=8,
        rejected=0,
        min_group_size=5,
    )
    five = map_findings(matrix, counted, Anonymity())
    assert five.groups == 2 and five.divisive is None and five.withheld_below is None
    assert five.consensus  # agreed on by most of all seven: no group's figure
    assert map_findings(matrix, counted, Anonymity(min_group_size=2)).divisive == 1


# --- a large consultation's figures: the worker's count, not a live one ------------------------------------------


async def test_a_large_consultations_screen_shows_the_workers_count_as_of_its_time_and_keeps_k(
    session: ConsoleSession,
    uows: UnitOfWorkFactory,
    world: World,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "Large" from 10 possible votes here (the site's bound is far higher), and any count of the votes inside the
    # screen's unit of work fails the test: the screen may only show what the worker counted.
    monkeypatch.setattr(consultations_module, "LIVE_TALLY_UP_TO", 10)

    async def no_live_count(*_: object) -> None:
        raise AssertionError("the staff's screen counted the votes inside its unit of work")

    monkeypatch.setattr(consultations_module, "vote_tally", no_live_count)
    consultation_id, statements = await _consultation(uows, world, clock)
    await _votes(uows, world.residents[:4], statements, VoteValue.AGREE)  # 4 × 4 possible votes: large

    # Nothing counted yet: the participants and statements, and no vote figure.
    out = await _script(session, "/as worker", "/consultations")
    assert "Participants: 4" in out
    assert (
        "Votes: not counted yet. A consultation this large is counted in the background while people vote, and at "
        "its close."
    ) in out
    assert not any("of whom" in line or line.startswith("Votes as of") for line in out)

    # The map job counts four voters: shown as of its time, and still withheld below k = 5.
    await refresh_priorities(uows, consultation_id, Worker(processes=False))
    out = await _script(session, "/consultations")
    first_count = [line for line in out if line.startswith("Votes as of ")]
    assert len(first_count) == 1
    assert "Participants: 4, of whom 4 voted" in out
    assert any(line.startswith("Votes: 16 (agree, disagree and pass are shown once at least 5") for line in out)

    # A fifth voter: the screen keeps the worker's count (and its withholding) until the next one.
    await _votes(uows, world.residents[4:5], statements, VoteValue.DISAGREE)
    out = await _script(session, "/consultations")
    assert "Participants: 5, of whom 4 voted" in out and first_count[0] in out
    assert not any("agree 12" in line for line in out)

    # Ten minutes later the map job counts again: five voters, the votes by value shown, as of the new time.
    clock.advance(timedelta(minutes=10))
    await refresh_priorities(uows, consultation_id, Worker(processes=False))
    out = await _script(session, "/consultations")
    assert "Participants: 5, of whom 5 voted" in out
    assert "Votes: 20 (agree 16, disagree 4, pass 0)" in out
    second_count = [line for line in out if line.startswith("Votes as of ")]
    assert len(second_count) == 1 and second_count != first_count

    # Closed, the outcome job counts the last votes (in the worker, where counting is allowed) for the screen.
    monkeypatch.undo()
    monkeypatch.setattr(consultations_module, "LIVE_TALLY_UP_TO", 10)
    await _votes(uows, world.residents[5:6], statements, VoteValue.PASS)
    async with uows() as uow:
        assert await close_consultation(uow, consultation_id)
        await uow.commit()
    clock.advance(timedelta(minutes=10))
    await send_outcome(uows, consultation_id, Worker(processes=False))
    out = await _script(session, "/consultations")
    assert "Participants: 6, of whom 6 voted" in out
    assert "Votes: 24 (agree 16, disagree 4, pass 4)" in out
    third_count = [line for line in out if line.startswith("Votes as of ")]
    assert len(third_count) == 1 and third_count != second_count


async def test_a_small_consultations_screen_counts_live_without_an_as_of(
    session: ConsoleSession, uows: UnitOfWorkFactory, world: World, clock: FakeClock
) -> None:
    consultation_id, statements = await _consultation(uows, world, clock)
    await _votes(uows, world.residents[:5], statements[:1], VoteValue.AGREE)
    assert 6 * len(statements) <= consultations_module.LIVE_TALLY_UP_TO  # this one is counted live
    await refresh_priorities(uows, consultation_id, Worker(processes=False))  # a stored count is not shown
    await _votes(uows, world.residents[5:6], statements[:1], VoteValue.DISAGREE)
    out = await _script(session, "/as worker", "/consultations")
    assert "Participants: 6, of whom 6 voted" in out
    assert "Votes: 6 (agree 5, disagree 1, pass 0)" in out
    assert not any(line.startswith("Votes as of ") for line in out)


async def test_a_count_older_than_the_one_kept_changes_nothing(
    uows: UnitOfWorkFactory, world: World, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consultations_module, "LIVE_TALLY_UP_TO", 0)  # every consultation shows the kept count
    consultation_id, statements = await _consultation(uows, world, clock)
    await _votes(uows, world.residents[:1], statements[:1], VoteValue.AGREE)
    newer, older = clock.now(), clock.now() - timedelta(minutes=5)
    async with uows() as uow:
        await store_tally(uow, consultation_id, VoteTally(voters=6, agree=3, disagree=2, passed=1), newer)
        await store_tally(uow, consultation_id, VoteTally(voters=5, agree=5, disagree=0, passed=0), older)
        await uow.commit()
    async with uows() as uow:
        shown = await staff_figures(uow, consultation_id)
    assert (shown.voters, shown.agree, shown.disagree, shown.passed, shown.as_of) == (6, 3, 2, 1, newer)
