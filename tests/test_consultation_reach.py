"""Who a consultation reaches (consultation.reach), on both databases: the one-query invitation list agrees with
consultations.is_eligible person by person for every kind of scope and eligibility; one entry per reachable
account, in the reader's language; participants are found through their link, and nobody else; the operator at
the terminal (actor None) may create a consultation."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from community.anonymity import Anonymity
from community.clock import FakeClock
from community.models import ChannelAccount, Household, Membership, Person
from community.roles import Role
from community.scope import Scope
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import add_statement, create, get_consultation, is_eligible, participate
from consultation.models import Consultation, Eligibility
from consultation.reach import count_eligible, eligible_people, invitees, participants_reached
from tests.test_consultations import B3, B7, _cast, _draft, _open


@pytest.fixture
def anonymity() -> Anonymity:
    """These tests count who is reached, person by person, in a cast of four residents: k = 2 lets them make
    consultations for it (the scopes of one person are checked on consultations that are never created)."""
    return Anonymity(min_group_size=2)


GROUP = "第一居民小组"
SCOPES = (
    Scope(),
    Scope(buildings=(B3,)),
    Scope(buildings=(B3, B7)),
    Scope(roles=(Role.HOUSEHOLD_REPRESENTATIVE,)),
    Scope(buildings=(B7,), roles=(Role.COMMITTEE_MEMBER,)),
    Scope(groups=(GROUP,)),
)


def _unstored(community_id: int, audience: Scope, eligibility: Eligibility, clock: FakeClock) -> Consultation:
    """A consultation with this scope, never stored (is_eligible and the reach queries read only its scope)."""
    now = clock.now()
    return Consultation(
        community_id=community_id,
        title="议题",
        background="背景",
        language="zh_Hans",
        audience=audience.to_json(),
        eligibility=eligibility,
        opens_at=now,
        closes_at=now,
        created_at=now,
    )


async def test_the_invitation_query_agrees_with_is_eligible_for_every_scope(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows, neighbours=0)
    async with uows() as uow:
        # 3号楼's households form a residents' group; 7号楼's belong to none.
        await uow.session.exec(update(Household).where(col(Household.building) == B3).values(resident_group=GROUP))
        await uow.commit()
    async with uows() as uow:
        everyone = [p for p in (await uow.session.exec(select(Person.id))).all() if p is not None]
    for audience, eligibility in product(SCOPES, Eligibility):
        # Never stored: some scopes hold a single person, too few for a consultation to be created.
        consultation = _unstored(cast.wutong, audience, eligibility, clock)
        async with uows() as uow:
            expected = [p for p in sorted(everyone) if await is_eligible(uow, p, consultation)]
            assert await eligible_people(uow, consultation) == expected, (audience, eligibility)
            assert [r.person_id for r in await invitees(uow, consultation)] == expected
            assert await count_eligible(uow, cast.wutong, audience, eligibility) == len(expected)

    # A few cases spelled out, so the agreement is not agreement on nothing.
    residents = await _open(uows, cast, clock, title="全体居民")
    b3 = await _open(uows, cast, clock, title="3号楼", audience=Scope(buildings=(B3,)))
    members = await _open(uows, cast, clock, title="全体成员", eligibility=Eligibility.MEMBERS)
    async with uows() as uow:
        assert await eligible_people(uow, await get_consultation(uow, residents)) == sorted(
            [cast.committee, cast.wang, cast.liu, cast.chen]
        )
        assert await eligible_people(uow, await get_consultation(uow, b3)) == sorted([cast.wang, cast.liu])
        assert await eligible_people(uow, await get_consultation(uow, members)) == sorted(
            [cast.worker, cast.committee, cast.wang, cast.liu, cast.chen, cast.unit]
        )


async def test_invitees_are_each_reachable_account_in_the_readers_language(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows, neighbours=0)
    async with uows() as uow:
        await uow.session.exec(update(Person).where(col(Person.id) == cast.chen).values(language="en"))
        # 王芳 also uses the console; 刘洋 blocked the bot on Telegram.
        uow.session.add(
            ChannelAccount(
                person_id=cast.wang,
                channel="console",
                external_id="wang",
                chat_id="wang-console",
                created_at=clock.now(),
            )
        )
        await uow.session.exec(
            update(ChannelAccount)
            .where(col(ChannelAccount.person_id) == cast.liu)
            .values(unreachable_since=clock.now())
        )
        await uow.commit()
    consultation_id = await _open(uows, cast, clock, audience=Scope(buildings=(B3, B7)))
    async with uows() as uow:
        consultation = await get_consultation(uow, consultation_id)
        reached = [(r.person_id, r.channel, r.chat_id, r.language) for r in await invitees(uow, consultation)]
        assert await count_eligible(uow, cast.wutong, Scope(buildings=(B3, B7)), Eligibility.RESIDENTS) == 3
    assert reached == [
        (cast.committee, "telegram", "committee", "zh_Hans"),
        (cast.wang, "telegram", "wang", "zh_Hans"),
        (cast.wang, "console", "wang-console", "zh_Hans"),
        (cast.chen, "telegram", "chen", "en"),
    ]


async def test_participants_are_those_who_took_part_and_nobody_else(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows, neighbours=0)
    consultation_id = await _open(uows, cast, clock)
    other_id = await _open(uows, cast, clock, title="另一个议题")
    async with uows() as uow:
        await participate(uow, cast.chen, consultation_id)
        await participate(uow, cast.wang, consultation_id)
        await participate(uow, cast.liu, other_id)
        await uow.commit()
    async with uows() as uow:
        consultation = await get_consultation(uow, consultation_id)
        assert [r.person_id for r in await participants_reached(uow, consultation)] == sorted([cast.wang, cast.chen])
        # A participant who left the community is still told the outcome of what they took part in.
        await uow.session.exec(
            update(Membership).where(col(Membership.person_id) == cast.chen).values(community_id=cast.yinxing)
        )
        assert cast.chen in [r.person_id for r in await participants_reached(uow, consultation)]


async def test_the_operator_creates_a_consultation_without_a_person(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows, neighbours=0)
    async with uows() as uow:
        consultation = await create(uow, None, _draft(cast, clock, opens_at=clock.now() + timedelta(minutes=5)))
        assert consultation.id is not None
        seeded = await add_statement(uow, None, consultation.id, "东门空地应改建为停车位。")
        await uow.commit()
    assert consultation.created_by is None
    assert seeded.author_id is None
