"""Eligibility is checked at every action in a consultation, not only at the first (issue 10): a resident who moved
out of the consultation's buildings, or handed over the household representative's role, after taking part keeps
what they did (it counts) but can vote no more, change no vote and add no statement; they are told why in their
language, and /consult no longer offers the consultation. In the console, on both databases, with the demo."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from sqlmodel import col, delete, select

from bot.channels.console import ConsoleSession, ConsoleUser
from bot.consultations.cards import ConsultStep, Step
from bot.events import ButtonPress, Event, Sender
from bot.rendering import Localizer
from community.anonymity import Anonymity
from community.clock import FakeClock
from community.demo import WUTONG
from community.models import Community, Household, Membership, MembershipRole, Person
from community.roles import Role
from community.scope import Scope
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import figures, participate, submit_statement, vote
from consultation.errors import NotEligible
from consultation.models import Eligibility, Statement, Vote
from tests.support.console import buttons as _buttons
from tests.support.console import script as _script
from tests.support.console import tap as _tap
from tests.support.demo_consultation import demo_consultation
from tests.support.demo_people import CHEN, WANG, WORKER

TITLE = "A bicycle shed by building 3?"
BACKGROUND = "Part of the lawn could become a covered shed."
SEEDED = ("A shed keeps bicycles dry.", "The lawn matters more than bicycles.", "Racks are enough.")
REFUSAL = "This consultation is for other residents of the community, so you cannot take part in it."
NOTHING_OPEN = "No consultation is open for you right now. You get an invitation when one opens."


@pytest.fixture
def anonymity() -> Anonymity:
    """The consultation of the first story is for 3号楼 and 7号楼 (three residents): k = 2 lets it be made."""
    return Anonymity(min_group_size=2)


@pytest.fixture
def session(console: Callable[[Sequence[ConsoleUser]], ConsoleSession]) -> ConsoleSession:
    return console((WORKER, WANG, CHEN))


async def _person(uows: UnitOfWorkFactory, name: str) -> int:
    async with uows() as uow:
        found = (await uow.session.exec(select(Person.id).where(Person.display_name == name))).one()
    assert found is not None
    return found


async def _membership(uows: UnitOfWorkFactory, person_id: int) -> int:
    async with uows() as uow:
        found = (
            await uow.session.exec(
                select(Membership.id)
                .join(Community, col(Community.id) == col(Membership.community_id))
                .where(Membership.person_id == person_id, Community.name == WUTONG)
            )
        ).one()
    assert found is not None
    return found


async def _votes(uows: UnitOfWorkFactory, consultation_id: int) -> int:
    async with uows() as uow:
        return (await figures(uow, consultation_id)).votes


async def test_a_resident_who_moved_out_of_the_buildings_can_vote_no_more(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, zh: Localizer
) -> None:
    made = await demo_consultation(
        uows,
        clock,
        title=TITLE,
        background=BACKGROUND,
        statements=SEEDED,
        audience=Scope(buildings=("3号楼", "7号楼")),
    )
    # 陈晓 (7号楼) opens it and votes on the first statement.
    out = await _script(session, "/as chen", "/consult")
    out = await _tap(session, out, TITLE)
    card = await _tap(session, out, "👍 Agree")
    assert SEEDED[1] in card
    assert await _votes(uows, made.consultation_id) == 1

    # She moves to 12号楼 (张伟's household), out of the consultation's buildings.
    chen = await _person(uows, "陈晓")
    membership_id = await _membership(uows, chen)
    async with uows() as uow:
        twelve = (
            await uow.session.exec(
                select(Household.id).where(Household.community_id == made.community_id, Household.building == "12号楼")
            )
        ).first()
        membership = await uow.session.get(Membership, membership_id)
        assert membership is not None and twelve is not None
        membership.household_id = twelve
        uow.session.add(membership)
        await uow.commit()

    # Her next tap on the card she holds is refused, in her language, and counts nothing.
    out = await _tap(session, card, "👎 Disagree")
    assert REFUSAL in out
    assert await _votes(uows, made.consultation_id) == 1
    # She cannot change her first vote either, nor add a statement.
    async with uows() as uow:
        with pytest.raises(NotEligible):
            await vote(uow, chen, made.statement_ids[0], -1)
        with pytest.raises(NotEligible):
            await submit_statement(uow, chen, made.consultation_id, "Ask the neighbours first.")
        with pytest.raises(NotEligible):
            await participate(uow, chen, made.consultation_id)
    async with uows() as uow:
        assert (await uow.session.exec(select(Statement).where(col(Statement.author_id).is_not(None)))).all() == []
        values = (await uow.session.exec(select(Vote.value))).all()
    assert list(values) == [1]  # what she did before she moved stays counted
    # /consult no longer offers it to her.
    out = await _script(session, "/consult")
    assert out == [NOTHING_OPEN]


async def test_a_representative_who_handed_over_the_role_is_told_in_chinese(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, zh: Localizer
) -> None:
    made = await demo_consultation(
        uows,
        clock,
        title=TITLE,
        background=BACKGROUND,
        statements=SEEDED,
        eligibility=Eligibility.HOUSEHOLD_REPRESENTATIVES,
    )
    # 王芳 speaks for her household: she votes, then adds a statement.
    out = await _script(session, "/as wang", "/consult")
    out = await _tap(session, out, TITLE)
    card = await _tap(session, out, zh.text("👍 Agree"))
    assert SEEDED[1] in card
    wang = await _person(uows, "王芳")
    async with uows() as uow:
        await submit_statement(uow, wang, made.consultation_id, "先问问邻居们的意见。")
        await uow.commit()

    # She hands the household representative's role over; she is still a resident of 梧桐社区.
    membership_id = await _membership(uows, wang)
    async with uows() as uow:
        await uow.session.exec(
            delete(MembershipRole).where(
                col(MembershipRole.membership_id) == membership_id,
                col(MembershipRole.role) == Role.HOUSEHOLD_REPRESENTATIVE,
            )
        )
        await uow.commit()

    out = await _tap(session, card, zh.text("👎 Disagree"))
    assert zh.text(REFUSAL) in out
    assert await _votes(uows, made.consultation_id) == 1
    cid = made.consultation_id
    # "Add a statement" (her card's button) is refused with the same message, and no prompt waits for text.
    replies = await session.conversation.handle(
        Event(Sender("console", "wang", "wang", "王芳", "zh-hans"), ButtonPress(ConsultStep(cid, Step.ADD).pack()))
    )
    assert zh.text(REFUSAL) in [getattr(reply, "text", None) for reply in replies]
    out = await session.feed("再加一条意见。")
    assert out == [zh.text("I wasn't expecting a message just now. Send /menu to see what you can do.")]
    async with uows() as uow:
        authored = (await uow.session.exec(select(Statement.text).where(col(Statement.author_id).is_not(None)))).all()
    assert list(authored) == ["先问问邻居们的意见。"]
    out = await _script(session, "/consult")
    assert out == [zh.text(NOTHING_OPEN)]
    assert _buttons(out) == []
