"""One scope, one eligibility (community.scope), held by a property: over random memberships (people in two
communities, with or without a household, households in buildings and residents' groups or none, any roles) and
random criteria (a community, buildings, groups and roles, some of which nobody has, and an eligibility), the
people the SQL filter selects are exactly those the single-person check admits, and exactly those the conditions
admit when applied to the memberships as generated. On both databases.

Each example writes its own two communities into the test's database, so examples need no clean-up between them:
every query is limited to a community of the example. Profiles as in tests/test_fuzz.py (HYPOTHESIS_PROFILE): "ci"
(the default) is derandomized and small, "fuzz" tries many more."""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from community.clock import FakeClock
from community.models import Community, Household, Membership, MembershipRole, Person
from community.roles import CommunityKind, Role
from community.scope import Criteria, Eligibility, Member, Scope, is_admitted
from community.unit_of_work import UnitOfWorkFactory

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
SETTINGS = {
    # Each example writes a dozen rows and runs a few queries per criteria: about 2 s for both databases.
    "ci": settings(
        max_examples=30,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=_HEALTH,
    ),
    "fuzz": settings(max_examples=500, deadline=None, suppress_health_check=_HEALTH),
}

BUILDINGS = ("3号楼", "7号楼", "12号楼")
GROUPS = ("第一居民小组", "第二居民小组")
NOBODYS_BUILDING = "99号楼"  # in a criteria's scope, never in a household: matches nobody
NOBODYS_GROUP = "第九组"


@dataclass(frozen=True, slots=True)
class HomeSpec:
    building: str | None
    group: str | None


@dataclass(frozen=True, slots=True)
class MembershipSpec:
    community: int  # 0 or 1: which of the example's two communities
    home: int | None  # index into that community's households
    roles: frozenset[Role]


@dataclass(frozen=True, slots=True)
class World:
    homes: tuple[tuple[HomeSpec, ...], tuple[HomeSpec, ...]]  # per community
    people: tuple[tuple[MembershipSpec, ...], ...]  # per person: their memberships, at most one per community


homes = st.builds(HomeSpec, st.sampled_from((*BUILDINGS, None)), st.sampled_from((*GROUPS, None)))
roles = st.frozensets(st.sampled_from(tuple(Role)), max_size=3)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    per_community = (
        tuple(draw(st.lists(homes, max_size=4))),
        tuple(draw(st.lists(homes, max_size=3))),
    )
    people: list[tuple[MembershipSpec, ...]] = []
    for _ in range(draw(st.integers(1, 8))):
        memberships: list[MembershipSpec] = []
        for community in draw(st.sets(st.sampled_from((0, 1)))):
            choices = len(per_community[community])
            home = draw(st.none() | st.integers(0, choices - 1)) if choices else None
            memberships.append(MembershipSpec(community, home, draw(roles)))
        people.append(tuple(memberships))
    return World(per_community, tuple(people))


scopes = st.builds(
    Scope,
    buildings=st.lists(st.sampled_from((*BUILDINGS, NOBODYS_BUILDING)), max_size=2).map(tuple),
    groups=st.lists(st.sampled_from((*GROUPS, NOBODYS_GROUP)), max_size=2).map(tuple),
    roles=st.lists(st.sampled_from(tuple(Role)), max_size=2).map(tuple),
)
criteria_drawn = st.tuples(st.sampled_from((0, 1)), scopes, st.sampled_from(tuple(Eligibility)))


async def _store(uows: UnitOfWorkFactory, clock: FakeClock, world: World) -> tuple[list[int], list[int], list[Member]]:
    """The world in the database: its two community ids, its person ids, and each membership as a Member built
    from the generated data (not read back)."""
    now = clock.now()
    async with uows() as uow:
        communities = [Community(kind=CommunityKind.NEIGHBOURHOOD, name=f"社区{i}", created_at=now) for i in (0, 1)]
        uow.session.add_all(communities)
        await uow.session.flush()
        community_ids = [c.id for c in communities if c.id is not None]
        households: list[list[Household]] = []
        for index, specs in enumerate(world.homes):
            made = [
                Household(
                    community_id=community_ids[index], label=f"户{n}", building=s.building, resident_group=s.group
                )
                for n, s in enumerate(specs)
            ]
            uow.session.add_all(made)
            households.append(made)
        await uow.session.flush()
        person_ids: list[int] = []
        members: list[Member] = []
        for number, memberships in enumerate(world.people):
            person = Person(display_name=f"居民{number}", created_at=now)
            uow.session.add(person)
            await uow.session.flush()
            assert person.id is not None
            person_ids.append(person.id)
            for spec in memberships:
                home = households[spec.community][spec.home] if spec.home is not None else None
                membership = Membership(
                    person_id=person.id,
                    community_id=community_ids[spec.community],
                    household_id=home.id if home is not None else None,
                    joined_at=now,
                )
                uow.session.add(membership)
                await uow.session.flush()
                assert membership.id is not None
                uow.session.add_all(MembershipRole(membership_id=membership.id, role=role) for role in spec.roles)
                members.append(
                    Member(
                        person_id=person.id,
                        community_id=community_ids[spec.community],
                        household_id=home.id if home is not None else None,
                        building=home.building if home is not None else None,
                        group=home.resident_group if home is not None else None,
                        roles=spec.roles,
                    )
                )
        await uow.commit()
    return community_ids, person_ids, members


@SETTINGS[PROFILE]
@given(world=worlds(), drawn=st.lists(criteria_drawn, min_size=1, max_size=4))
async def test_the_sql_filter_selects_exactly_whom_the_single_person_check_admits(
    uows: UnitOfWorkFactory, clock: FakeClock, world: World, drawn: list[tuple[int, Scope, Eligibility]]
) -> None:
    community_ids, person_ids, members = await _store(uows, clock, world)
    for community, scope, eligibility in drawn:
        criteria = Criteria(community_ids[community], scope, eligibility)
        async with uows() as uow:
            selected = list((await uow.session.exec(criteria.members())).scalars())  # type: ignore[call-overload]
            admitted = {person for person in person_ids if await is_admitted(uow, person, criteria)}
        generated = {member.person_id for member in members if criteria.admits(member)}
        assert len(selected) == len(set(selected)), "a person selected twice"
        assert set(selected) == admitted == generated, (criteria, world)
