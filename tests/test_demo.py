from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from bot.channels.console import ConsoleSession
from bot.rendering import Localizers
from community import audit
from community.anonymity import DEFAULT_MIN_GROUP_SIZE
from community.clock import FakeClock
from community.communities import add_community, effective_roles
from community.demo import CONSOLE, DAOXIANG, STREET, WUTONG, YINXING, demo_people, seed_demo
from community.models import AuditEntry, ChannelAccount, Community, Household, Membership, Person
from community.people import identify
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory
from tests.support.console import scheduled_session
from tests.support.console import script as _script
from tests.support.console import tap as _tap
from tests.support.demo_people import STREET as STREET_ADMINISTRATOR
from tests.support.demo_people import WORKER
from tests.support.outbox import outbox_rows


async def _count(uow: UnitOfWork, model: type[Community | Person | Membership | AuditEntry | Household]) -> int:
    return (await uow.session.exec(select(func.count()).select_from(model))).one()


async def _community(uow: UnitOfWork, name: str) -> Community:
    return (await uow.session.exec(select(Community).where(Community.name == name))).one()


async def test_seed_builds_the_street_its_communities_and_people(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        demo = await seed_demo(uow)
        await uow.commit()
    assert demo.created
    assert [p.key for p in demo.people] == [
        *("worker", "committee", "street", "wang", "liu", "chen", "zhao"),
        *("zheng", "wu", "huang", "qian", "ma", "he", "luo"),
    ]

    async with uows() as uow:
        street = await _community(uow, STREET)
        assert street.kind == CommunityKind.STREET and street.parent_id is None
        kinds = {name: (await _community(uow, name)) for name in (WUTONG, YINXING, DAOXIANG)}
        assert kinds[WUTONG].kind == kinds[YINXING].kind == CommunityKind.NEIGHBOURHOOD
        assert kinds[DAOXIANG].kind == CommunityKind.VILLAGE
        assert {c.parent_id for c in kinds.values()} == {street.id}
        wutong_id = kinds[WUTONG].id
        assert wutong_id is not None

        worker = demo.by_key("worker")
        assert worker.name == "李娜"
        assert Role.COMMUNITY_WORKER in await effective_roles(uow, worker.person_id, wutong_id)
        committee = demo.by_key("committee")
        assert committee.name == "张伟"
        assert Role.COMMITTEE_MEMBER in await effective_roles(uow, committee.person_id, wutong_id)
        # The street administrator's role reaches down into the communities of the street.
        assert Role.STREET_ADMINISTRATOR in await effective_roles(uow, demo.by_key("street").person_id, wutong_id)
        assert await effective_roles(uow, demo.by_key("wang").person_id, wutong_id) == {
            Role.RESIDENT,
            Role.HOUSEHOLD_REPRESENTATIVE,
        }
        assert Role.RESIDENT in await effective_roles(uow, demo.by_key("zhao").person_id, kinds[DAOXIANG].id or 0)

        homes = (await uow.session.exec(select(Household).where(Household.community_id == wutong_id))).all()
        assert len(homes) >= 3
        assert all(home.building and home.room for home in homes)
        wang_home = next(home for home in homes if home.label == demo.by_key("wang").household)
        assert (wang_home.building, wang_home.unit, wang_home.room) == ("3号楼", "2单元", "501")
        # A notice can go to some buildings or residents' groups: there are several of each to choose from.
        assert len({home.building for home in homes}) >= 3
        assert len({home.resident_group for home in homes if home.resident_group}) >= 2
        same_household = (
            await uow.session.exec(select(Membership.person_id).where(Membership.household_id == wang_home.id))
        ).all()
        assert set(same_household) == {demo.by_key("wang").person_id, demo.by_key("liu").person_id}

        chen = await uow.session.get(Person, demo.by_key("chen").person_id)
        assert chen is not None and chen.language == "en"
        accounts = (await uow.session.exec(select(ChannelAccount).where(ChannelAccount.channel == CONSOLE))).all()
        assert {a.external_id for a in accounts} == {p.key for p in demo.people}
        assert all(a.chat_id == a.external_id for a in accounts)
        assert (await audit.verify(uow)).ok


async def test_the_console_finds_the_seeded_person_behind_a_key(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        demo = await seed_demo(uow)
        await uow.commit()
    async with uows() as uow:
        identity = await identify(
            uow, channel=CONSOLE, external_id="worker", chat_id="worker", display_name="李娜", language_code="zh-hans"
        )
    assert not identity.is_new
    assert identity.person_id == demo.by_key("worker").person_id
    assert identity.primary is not None and identity.primary.community.name == WUTONG
    assert Role.COMMUNITY_WORKER in identity.primary.roles


async def test_seeding_twice_adds_nothing_and_says_so(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        first = await seed_demo(uow)
        await uow.commit()
    async with uows() as uow:
        before = [await _count(uow, model) for model in (Community, Person, Membership, AuditEntry, Household)]
        again = await seed_demo(uow)
        await uow.commit()
    async with uows() as uow:
        after = [await _count(uow, model) for model in (Community, Person, Membership, AuditEntry, Household)]
    assert not again.created
    assert again.outcome != first.outcome
    assert after == before
    # The second answer still lists who is who, so the console can offer the same people again.
    assert [(p.key, p.person_id) for p in again.people] == [(p.key, p.person_id) for p in first.people]


async def test_no_demo_in_a_database_that_already_has_communities(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        await add_community(uow, name="真实街道", kind=CommunityKind.STREET)
        await uow.commit()
    async with uows() as uow:
        demo = await seed_demo(uow)
        await uow.commit()
    async with uows() as uow:
        names = (await uow.session.exec(select(Community.name).order_by(col(Community.id)))).all()
        assert await demo_people(uow) == ()
    assert not demo.created
    assert demo.people == ()
    assert names == ["真实街道"]


async def test_a_demo_for_telegram_has_its_communities_but_no_console_people(uows: UnitOfWorkFactory) -> None:
    """The console's people are console accounts, which no Telegram process reaches: a database meant for
    Telegram gets the demo's communities only (issue 9)."""
    async with uows() as uow:
        demo = await seed_demo(uow, people=False)
        await uow.commit()
    async with uows() as uow:
        names = set((await uow.session.exec(select(Community.name))).all())
        accounts = (await uow.session.exec(select(func.count()).select_from(ChannelAccount))).one()
    assert demo.created and demo.people == ()
    assert names == {STREET, WUTONG, YINXING, DAOXIANG}
    assert accounts == 0
    assert "without the console's people" in demo.outcome


# --- the tour's consultation, at the default k --------------------------------------------------------------------


@pytest.fixture
def session(
    demo: None, uows: UnitOfWorkFactory, localizers: Localizers, clock: FakeClock, tmp_path: Path
) -> ConsoleSession:
    return scheduled_session(uows, localizers, (WORKER, STREET_ADMINISTRATOR), tmp_path / "files")


async def test_a_consultation_for_the_whole_community_reaches_the_default_k(
    session: ConsoleSession, uows: UnitOfWorkFactory
) -> None:
    """The README tour's step 10 at the default k = 5, as `make run` starts it: 梧桐社区's seven residents are
    invited (its five households for one voice per household), and 稻香村's five villagers by the street
    administrator, whose role reaches down into the village."""
    async with uows() as uow:
        assert uow.anonymity.min_group_size == DEFAULT_MIN_GROUP_SIZE == 5
    out = await _script(session, "/newconsultation", "东门空地改造", "东门空地可以改成停车位，也可以改成口袋公园。")
    out = await _tap(session, out, "Next ›", "Household representatives", "Preview ›")  # the whole community
    assert "For: the whole community · Household representatives" in out
    assert "5 people would be invited now." in out  # 张伟, 王芳, 陈晓, 郑丽, 黄建华
    out = await _tap(session, out, "Edit", "Residents", "Preview ›")
    assert "For: the whole community · Residents" in out and "7 people would be invited now." in out
    out = await _tap(session, out, "Create")
    assert out[1:3] == ["Consultation #1 is open.", "The invitation is going out to 7 people."]
    invited = [row.chat_id for row in await outbox_rows(uows)]
    assert invited == ["committee", "wang", "liu", "chen", "zheng", "wu", "huang"]

    # 周敏 reads Chinese.
    out = await _script(session, "/as street", "/newconsultation")
    out = await _tap(session, out, "稻香村")
    out = await _script(session, "村口晒谷场改造", "晒谷场可以铺成停车场，也可以留作晒谷和活动。")
    out = await _tap(session, out, "下一步 ›", "预览 ›")
    assert "范围：全社区 · 居民" in out and "目前有 5 人会被邀请。" in out
    out = await _tap(session, out, "创建")
    assert out[1:3] == ["议事协商 #2 已开始。", "邀请正在发给 5 人。"]
    assert [row.chat_id for row in await outbox_rows(uows)][7:] == ["zhao", "qian", "ma", "he", "luo"]
