"""Who a process reaches (Scope) and who in it may act (Eligibility), written once for both ways they are asked:
as a set (invite ten thousand residents, count a preview, fan a notice out: one SELECT) and for one person at an
action (may this resident vote now?).

Both are conjunctions of conditions on a member of a community: a Membership with its Household and its roles.
A condition (InCommunity, InBuildings, InGroups, HoldsRole) gives its SQL clause, on Membership outer-joined with
Household, and its test of a Member loaded once. Scopes and eligibilities only list conditions; filters() and
admits() are derived from that list the same way for all of them, so the set and the single check can differ only
if one condition's two forms do, and tests/test_scope_property.py holds them equal over random memberships on both
databases.

Within a key of a Scope any value matches, across keys all must match (building 3 AND volunteers); all empty
is the whole community. Roles are the roles held, not the ones they grant (community.permissions), as a worker
addressing "volunteers" means the people who signed up as volunteers."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from community.eligibility import Eligibility as Eligibility  # re-exported: the kernel's scope types together
from community.errors import UnknownBuilding, UnknownResidentGroup
from community.models import Household, Membership, MembershipRole
from community.roles import RESIDENT_ROLES, ROLE_ORDER, Role
from community.unit_of_work import UnitOfWork

_NUMBER = re.compile(r"(\d+)")


def natural_key(value: str) -> tuple[str | int, ...]:
    """Sort "3号楼" before "12号楼": digit runs compare as numbers. Splitting on a capture group alternates text
    and digits, so the same positions always hold the same type and any two keys compare."""
    return tuple(int(part) if index % 2 else part for index, part in enumerate(_NUMBER.split(value)))


@dataclass(frozen=True, slots=True)
class Member:
    """What the conditions read of one person's membership of one community."""

    person_id: int
    community_id: int
    household_id: int | None
    building: str | None
    group: str | None  # Household.resident_group
    roles: frozenset[Role]


# --- the conditions: each one's SQL clause and its test of a Member say the same thing --------------------------


class Condition(Protocol):
    def clause(self) -> ColumnElement[bool]:
        """The condition on Membership (outer-joined with its Household)."""
        ...

    def holds(self, member: Member) -> bool:
        """The same condition on one loaded Member."""
        ...


@dataclass(frozen=True, slots=True)
class InCommunity:
    community_id: int

    def clause(self) -> ColumnElement[bool]:
        return col(Membership.community_id) == self.community_id

    def holds(self, member: Member) -> bool:
        return member.community_id == self.community_id


@dataclass(frozen=True, slots=True)
class InBuildings:
    buildings: tuple[str, ...]

    def clause(self) -> ColumnElement[bool]:
        # No household, or one without a building, is NULL here: IN is not true for it, as `None in` is False.
        return col(Household.building).in_(self.buildings)

    def holds(self, member: Member) -> bool:
        return member.building is not None and member.building in self.buildings


@dataclass(frozen=True, slots=True)
class InGroups:
    groups: tuple[str, ...]

    def clause(self) -> ColumnElement[bool]:
        return col(Household.resident_group).in_(self.groups)

    def holds(self, member: Member) -> bool:
        return member.group is not None and member.group in self.groups


@dataclass(frozen=True, slots=True)
class HoldsRole:
    """Holds at least one of these roles."""

    roles: frozenset[Role]

    def clause(self) -> ColumnElement[bool]:
        return exists().where(
            col(MembershipRole.membership_id) == col(Membership.id),
            col(MembershipRole.role).in_(sorted(self.roles)),
        )

    def holds(self, member: Member) -> bool:
        return not member.roles.isdisjoint(self.roles)


def filters(conditions: Iterable[Condition]) -> list[ColumnElement[bool]]:
    return [condition.clause() for condition in conditions]


def admits(conditions: Iterable[Condition], member: Member | None) -> bool:
    return member is not None and all(condition.holds(member) for condition in conditions)


# --- scope and eligibility ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """Whom a process reaches within its community: buildings, residents' groups, roles. Values are kept sorted
    and without repeats, so two scopes that select the same people compare equal and store the same JSON (the
    notice's and the consultation's `audience` column)."""

    buildings: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # Household.resident_group
    roles: tuple[Role, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "buildings", tuple(sorted(set(self.buildings), key=natural_key)))
        object.__setattr__(self, "groups", tuple(sorted(set(self.groups), key=natural_key)))
        object.__setattr__(self, "roles", tuple(sorted({Role(r) for r in self.roles}, key=ROLE_ORDER.__getitem__)))

    def is_everyone(self) -> bool:
        return not (self.buildings or self.groups or self.roles)

    def conditions(self) -> tuple[Condition, ...]:
        found: list[Condition] = []
        if self.buildings:
            found.append(InBuildings(self.buildings))
        if self.groups:
            found.append(InGroups(self.groups))
        if self.roles:
            found.append(HoldsRole(frozenset(self.roles)))
        return tuple(found)

    def filters(self) -> list[ColumnElement[bool]]:
        return filters(self.conditions())

    def admits(self, member: Member | None) -> bool:
        return admits(self.conditions(), member)

    def to_json(self) -> str:
        """Canonical JSON with only the keys in use: the whole community is "{}"."""
        data: dict[str, list[str]] = {}
        if self.buildings:
            data["buildings"] = list(self.buildings)
        if self.groups:
            data["groups"] = list(self.groups)
        if self.roles:
            data["roles"] = [role.value for role in self.roles]
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Scope:
        return _scope_from_json(raw or "{}")


@functools.lru_cache(maxsize=256)
def _scope_from_json(raw: str) -> Scope:
    """Parsed once per distinct JSON: every vote reads its consultation's scope (Scope is immutable)."""
    data = json.loads(raw)
    return Scope(
        buildings=tuple(str(b) for b in data.get("buildings", ())),
        groups=tuple(str(g) for g in data.get("groups", ())),
        roles=tuple(Role(r) for r in data.get("roles", ())),
    )


def eligibility_conditions(eligibility: Eligibility) -> tuple[Condition, ...]:
    """What an eligibility asks of a member, as conditions (each gives its SQL clause and its single-person test)."""
    if eligibility is Eligibility.RESIDENTS:
        return (HoldsRole(RESIDENT_ROLES),)
    if eligibility is Eligibility.HOUSEHOLD_REPRESENTATIVES:
        return (HoldsRole(frozenset({Role.HOUSEHOLD_REPRESENTATIVE})),)
    return ()


@dataclass(frozen=True, slots=True)
class Criteria:
    """A process's whole rule for who may act: its community, its scope and its eligibility (a notice's
    recipients are its community and scope, every member: Eligibility.MEMBERS)."""

    community_id: int
    scope: Scope = Scope()
    eligibility: Eligibility = Eligibility.MEMBERS

    def conditions(self) -> tuple[Condition, ...]:
        return (InCommunity(self.community_id), *self.scope.conditions(), *eligibility_conditions(self.eligibility))

    def filters(self) -> list[ColumnElement[bool]]:
        """Conditions on Membership outer-joined with its Household (see members() for the join)."""
        return filters(self.conditions())

    def admits(self, member: Member | None) -> bool:
        """The same conditions on one person's loaded membership (None: not a member, never admitted)."""
        return admits(self.conditions(), member)

    def members(self) -> Select[int]:
        """The person ids of the members admitted, one row each (a person has one membership per community)."""
        return (
            sa_select(col(Membership.person_id))
            .select_from(Membership)
            .outerjoin(Household, col(Household.id) == col(Membership.household_id))
            .where(*self.filters())
        )


# --- one person --------------------------------------------------------------------------------------------------

# The columns a Member is made of, one row per role held (a row with role None when they hold none); a query that
# reads a Member alongside something else (the vote's lookup) outer-joins these and hands the rows to member_of.
MEMBER_COLUMNS = (
    col(Membership.person_id),
    col(Membership.community_id),
    col(Membership.household_id),
    col(Household.building),
    col(Household.resident_group),
    col(MembershipRole.role),
)


def join_member(
    statement: Select[*tuple[Any, ...]], community_id: Any, *, outer: bool = False
) -> Select[*tuple[Any, ...]]:
    """statement joined to the membership in community_id (a column or a value) of the person bound as
    :person_id, with their household and roles: what MEMBER_COLUMNS read, for member_of. outer: rows stay
    where the person is no member there."""
    where = and_(col(Membership.person_id) == bindparam("person_id"), col(Membership.community_id) == community_id)
    joined = statement.outerjoin(Membership, where) if outer else statement.join(Membership, where)
    return joined.outerjoin(Household, col(Household.id) == col(Membership.household_id)).outerjoin(
        MembershipRole, col(MembershipRole.membership_id) == col(Membership.id)
    )


def member_of(rows: Sequence[Sequence[object]]) -> Member | None:
    """The Member in rows whose first six columns are MEMBER_COLUMNS; None when the outer join found no
    membership."""
    if not rows or rows[0][0] is None:
        return None
    person_id, community_id, household_id, building, group, _ = rows[0][:6]
    return Member(
        person_id=int(person_id),  # type: ignore[call-overload]
        community_id=int(community_id),  # type: ignore[call-overload]
        household_id=int(household_id) if household_id is not None else None,  # type: ignore[call-overload]
        building=building if isinstance(building, str) else None,
        group=group if isinstance(group, str) else None,
        roles=frozenset(Role(row[5]) for row in rows if row[5] is not None),  # type: ignore[arg-type]
    )


@functools.cache
def _member_statement() -> Select[int, int, int | None, str | None, str | None, Role]:
    """Built once: an action asks it every time."""
    return (
        sa_select(*MEMBER_COLUMNS)
        .select_from(Membership)
        .outerjoin(Household, col(Household.id) == col(Membership.household_id))
        .outerjoin(MembershipRole, col(MembershipRole.membership_id) == col(Membership.id))
        .where(
            and_(
                col(Membership.person_id) == bindparam("person_id"),
                col(Membership.community_id) == bindparam("community_id"),
            )
        )
    )


async def load_member(uow: UnitOfWork, person_id: int, community_id: int) -> Member | None:
    """The person's membership of the community as the conditions read it; None when they are not a member."""
    params = {"person_id": person_id, "community_id": community_id}
    rows = (await uow.session.exec(_member_statement(), params=params)).all()  # type: ignore[call-overload]
    return member_of(rows)


async def is_admitted(uow: UnitOfWork, person_id: int, criteria: Criteria) -> bool:
    """The single-person check: the person's membership loaded, then criteria.admits()."""
    return criteria.admits(await load_member(uow, person_id, criteria.community_id))


# --- what a scope can name -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudienceOptions:
    """The buildings and residents' groups of a community's households, in natural order (3 before 12): what a
    composer offers, and what a scope may name."""

    buildings: tuple[str, ...]
    groups: tuple[str, ...]


async def audience_options(uow: UnitOfWork, community_id: int) -> AudienceOptions:
    rows = (
        await uow.session.exec(
            select(Household.building, Household.resident_group).where(Household.community_id == community_id)
        )
    ).all()
    buildings = {building for building, _ in rows if building}
    groups = {group for _, group in rows if group}
    return AudienceOptions(
        buildings=tuple(sorted(buildings, key=natural_key)), groups=tuple(sorted(groups, key=natural_key))
    )


async def check_scope(uow: UnitOfWork, community_id: int, scope: Scope) -> None:
    """Refuse a scope naming a building or a residents' group the community has no household in (a typo would
    reach nobody), with a message for the sender: whatever a process is, notice or consultation."""
    options = await audience_options(uow, community_id)
    for building in scope.buildings:
        if building not in options.buildings:
            raise UnknownBuilding(building)
    for group in scope.groups:
        if group not in options.groups:
            raise UnknownResidentGroup(group)
