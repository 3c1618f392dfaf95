"""The members list: who may read it, paging, order, and sensitive data only for those allowed it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from community.communities import add_community, add_member, household
from community.errors import PermissionDenied, ValidationFailed
from community.members import list_members
from community.people import identify
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory

RESIDENTS = 42  # with the four below, 46 members: three pages of 20


@dataclass(frozen=True)
class Cast:
    community_id: int
    worker: int
    committee: int
    resident: int
    party_member: int
    street_admin: int
    outsider: int


async def _person(uow: UnitOfWork, key: str, name: str, phone: str | None = None) -> int:
    identity = await identify(uow, channel="console", external_id=key, chat_id=key, display_name=name)
    identity.person.phone = phone
    return identity.person_id


async def _member(
    uow: UnitOfWork, person_id: int, community_id: int, roles: set[Role], label: str | None = None
) -> None:
    household_id = (await household(uow, community_id, label)).id if label else None
    await add_member(
        uow, person_id=person_id, community_id=community_id, roles=roles, household_id=household_id, reason="test"
    )


async def _cast(uows: UnitOfWorkFactory) -> Cast:
    async with uows() as uow:
        street = await add_community(uow, name="示范街道", kind=CommunityKind.STREET)
        assert street.id is not None
        wutong = await add_community(uow, name="梧桐社区", kind=CommunityKind.NEIGHBOURHOOD, parent_id=street.id)
        other = await add_community(uow, name="银杏社区", kind=CommunityKind.NEIGHBOURHOOD, parent_id=street.id)
        assert wutong.id is not None and other.id is not None
        worker = await _person(uow, "worker", "李娜", "+8613800000001")
        committee = await _person(uow, "committee", "周敏", "+8613800000002")
        resident = await _person(uow, "resident", "陈建国", "+8613800000003")
        party = await _person(uow, "party", "张伟", "+8613800000004")
        admin = await _person(uow, "admin", "赵强")
        outsider = await _person(uow, "outsider", "孙丽")
        await _member(uow, worker, wutong.id, {Role.COMMUNITY_WORKER}, None)
        await _member(uow, committee, wutong.id, {Role.COMMITTEE_MEMBER, Role.RESIDENT}, "1号楼 101")
        await _member(uow, resident, wutong.id, {Role.RESIDENT}, "1号楼 101")
        await _member(uow, party, wutong.id, {Role.RESIDENT, Role.PARTY_MEMBER}, "1号楼 102")
        await _member(uow, admin, street.id, {Role.STREET_ADMINISTRATOR})
        await _member(uow, outsider, other.id, {Role.COMMUNITY_WORKER})
        for n in range(RESIDENTS):
            pid = await _person(uow, f"r{n}", f"居民{n:02d}", f"+86139{n:08d}")
            await _member(uow, pid, wutong.id, {Role.RESIDENT}, f"2号楼 {n % 7 + 1}01")
        await uow.commit()
    return Cast(wutong.id, worker, committee, resident, party, admin, outsider)


async def test_a_resident_may_not_list_members(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        with pytest.raises(PermissionDenied):
            await list_members(uow, actor_id=cast.resident, community_id=cast.community_id)
        with pytest.raises(PermissionDenied):
            # A worker of another community is nobody here.
            await list_members(uow, actor_id=cast.outsider, community_id=cast.community_id)


async def test_a_worker_reads_every_member_page_by_page(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        pages = [
            await list_members(uow, actor_id=cast.worker, community_id=cast.community_id, page=n) for n in range(3)
        ]
    total = RESIDENTS + 4
    assert [p.total for p in pages] == [total] * 3
    assert [len(p.items) for p in pages] == [20, 20, total - 40]
    assert [(p.page, p.pages, p.has_previous, p.has_next) for p in pages] == [
        (0, 3, False, True),
        (1, 3, True, True),
        (2, 3, True, False),
    ]
    everyone = [row for p in pages for row in p.items]
    assert len({row.person_id for row in everyone}) == total
    # By household label, then name; members without a household come last.
    keys = [(row.household is None, row.household or "", row.display_name) for row in everyone]
    assert keys == sorted(keys)
    assert everyone[0].household == "1号楼 101"
    assert everyone[-1].display_name == "李娜" and everyone[-1].household is None
    # The worker sees phones and party membership.
    by_name = {row.display_name: row for row in everyone}
    assert by_name["张伟"].phone == "+8613800000004"
    assert by_name["张伟"].roles == (Role.RESIDENT, Role.PARTY_MEMBER)
    assert by_name["周敏"].roles == (Role.RESIDENT, Role.COMMITTEE_MEMBER)
    assert pages[0].shows_sensitive


async def test_a_committee_member_sees_no_phone_and_no_party_membership(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        page = await list_members(uow, actor_id=cast.committee, community_id=cast.community_id, page_size=100)
    assert page.total == len(page.items) == RESIDENTS + 4
    assert not page.shows_sensitive
    assert all(row.phone is None for row in page.items)
    assert all(Role.PARTY_MEMBER not in row.roles for row in page.items)
    by_name = {row.display_name: row for row in page.items}
    assert by_name["张伟"].roles == (Role.RESIDENT,)


async def test_a_street_administrator_reads_the_communities_under_the_street(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        page = await list_members(uow, actor_id=cast.street_admin, community_id=cast.community_id)
    assert page.total == RESIDENTS + 4 and page.shows_sensitive


async def test_pages_out_of_range_are_clamped_and_sizes_checked(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        past = await list_members(uow, actor_id=cast.worker, community_id=cast.community_id, page=99)
        before = await list_members(uow, actor_id=cast.worker, community_id=cast.community_id, page=-3)
        with pytest.raises(ValidationFailed):
            await list_members(uow, actor_id=cast.worker, community_id=cast.community_id, page_size=0)
    assert (past.page, len(past.items)) == (2, RESIDENTS + 4 - 40)
    assert before.page == 0 and len(before.items) == 20
