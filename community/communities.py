"""Communities in their hierarchy, households, memberships and roles."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from community import audit
from community.errors import Conflict, NotFound, ValidationFailed
from community.models import Community, Household, Membership, MembershipRole
from community.permissions import INHERITED_ROLES, require
from community.roles import Action, CommunityKind, Role
from community.unit_of_work import UnitOfWork
from i18n import LANGUAGES, N_

MAX_NAME = 200
MAX_LABEL = 100


def clean_text(value: str, *, limit: int, message: str) -> str:
    """Trim surrounding blanks, refuse empty or over-long input; everything else is kept exactly."""
    value = value.strip()
    if not value or len(value) > limit:
        raise ValidationFailed(message, limit=limit)
    return value


async def find_community(uow: UnitOfWork, community_id: int) -> Community | None:
    """The community, or None for an id that does not exist (get_community refuses it as "no longer exists")."""
    return await uow.session.get(Community, community_id)


async def get_community(uow: UnitOfWork, community_id: int) -> Community:
    found = await uow.session.get(Community, community_id)
    if found is None:
        raise NotFound()
    return found


async def add_community(
    uow: UnitOfWork,
    *,
    name: str,
    kind: CommunityKind,
    parent_id: int | None = None,
    timezone: str = "Asia/Shanghai",
    default_language: str = "zh_Hans",
    actor_id: int | None = None,
) -> Community:
    """Add a street, township, neighbourhood or village. actor_id None means the operator at the terminal."""
    name = clean_text(name, limit=MAX_NAME, message=N_("A community name needs 1 to %(limit)s characters."))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(N_("Unknown time zone: %(timezone)s"), timezone=timezone) from exc
    if default_language not in LANGUAGES:
        raise ValidationFailed(N_("Unknown language: %(language)s"), language=default_language)
    if parent_id is not None:
        parent = await get_community(uow, parent_id)
        if parent.kind.is_grassroots:
            raise ValidationFailed(N_("Only a street or a township can have communities under it."))
        if actor_id is not None:
            require(await effective_roles(uow, actor_id, parent_id), Action.ADD_COMMUNITY)
    community = Community(
        name=name,
        kind=kind,
        parent_id=parent_id,
        timezone=timezone,
        default_language=default_language,
        created_at=uow.clock.now(),
    )
    uow.session.add(community)
    await uow.session.flush()
    await audit.record(
        uow,
        action="community.added",
        subject_type="community",
        subject_id=community.id,
        community_id=community.id,
        actor_id=actor_id,
        data={"kind": kind.value, "parent_id": parent_id},
    )
    return community


async def grassroots_communities(uow: UnitOfWork) -> list[Community]:
    """Neighbourhoods and villages, the communities a resident can ask to join."""
    kinds = [CommunityKind.NEIGHBOURHOOD, CommunityKind.VILLAGE]
    return list(
        (
            await uow.session.exec(select(Community).where(col(Community.kind).in_(kinds)).order_by(col(Community.id)))
        ).all()
    )


async def household(uow: UnitOfWork, community_id: int, label: str) -> Household:
    """The household with this label in the community, created the first time someone names it."""
    label = clean_text(label, limit=MAX_LABEL, message=N_("A household label needs 1 to %(limit)s characters."))
    found = (
        await uow.session.exec(
            select(Household).where(Household.community_id == community_id, Household.label == label)
        )
    ).first()
    if found is not None:
        return found
    created = Household(community_id=community_id, label=label)
    uow.session.add(created)
    await uow.session.flush()
    return created


@functools.cache
def _membership_statement() -> SelectOfScalar[Membership]:
    """Built once: every join and every permission check asks this."""
    return select(Membership).where(
        col(Membership.person_id) == bindparam("person_id"), col(Membership.community_id) == bindparam("community_id")
    )


@functools.cache
def _roles_in_statement() -> SelectOfScalar[str]:
    """The roles a person holds in a community, one query (no row: no membership, or one without roles)."""
    return (
        select(MembershipRole.role)
        .join(Membership, col(Membership.id) == col(MembershipRole.membership_id))
        .where(
            col(Membership.person_id) == bindparam("person_id"),
            col(Membership.community_id) == bindparam("community_id"),
        )
    )


async def membership(uow: UnitOfWork, person_id: int, community_id: int) -> Membership | None:
    params = {"person_id": person_id, "community_id": community_id}
    return (await uow.session.exec(_membership_statement(), params=params)).first()


async def roles_of(uow: UnitOfWork, membership_id: int) -> frozenset[Role]:
    rows = await uow.session.exec(select(MembershipRole.role).where(MembershipRole.membership_id == membership_id))
    return frozenset(Role(role) for role in rows.all())


async def effective_roles(
    uow: UnitOfWork, person_id: int, community_id: int, *, held_in: Mapping[int, frozenset[Role]] | None = None
) -> frozenset[Role]:
    """The person's roles in the community, plus a street administrator's role from the street above it.

    held_in: the roles the person holds, by community id, when the caller read every membership of theirs in
    this transaction (community.people.identities_of): then no role is read again."""
    roles: set[Role] = set()
    current: int | None = community_id
    first = True
    while current is not None:
        if held_in is not None:
            held = held_in.get(current, frozenset())
        else:
            params = {"person_id": person_id, "community_id": current}
            rows = (await uow.session.exec(_roles_in_statement(), params=params)).all()
            held = frozenset(Role(role) for role in rows)
        roles |= held if first else held & INHERITED_ROLES
        community = await get_community(uow, current)  # already in the session where the caller loaded it
        current = community.parent_id
        first = False
    return frozenset(roles)


class HouseholdHasRepresentative(Conflict):
    """A household speaks with one voice: it has at most one representative at a time."""

    message = N_("%(household)s already has a household representative: a household has only one.")


async def household_representative(uow: UnitOfWork, home: Household) -> int | None:
    """The person who represents the household, if it has one (at most one: add_member and grant_role refuse a
    second, and community.verification refuses an invitation for one)."""
    return (
        await uow.session.exec(
            select(Membership.person_id)
            .join(MembershipRole, col(MembershipRole.membership_id) == col(Membership.id))
            .where(
                col(Membership.household_id) == home.id,
                col(MembershipRole.role) == Role.HOUSEHOLD_REPRESENTATIVE,
            )
            .order_by(col(Membership.id))
        )
    ).first()


async def locked_household(uow: UnitOfWork, household_id: int) -> Household:
    """The household row, locked on PostgreSQL until the transaction ends, so that of two representatives
    joining at once the second finds the first (SQLite's units of work take turns already)."""
    home = (
        await uow.session.exec(
            select(Household)
            .where(col(Household.id) == household_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if home is None:
        raise NotFound()
    return home


async def _require_no_representative(uow: UnitOfWork, household_id: int | None, person_id: int) -> None:
    if household_id is None:
        return
    home = await locked_household(uow, household_id)
    holder = await household_representative(uow, home)
    if holder is not None and holder != person_id:
        raise HouseholdHasRepresentative(household=home.label)


async def add_member(
    uow: UnitOfWork,
    *,
    person_id: int,
    community_id: int,
    roles: set[Role] | frozenset[Role],
    household_id: int | None = None,
    actor_id: int | None = None,
    reason: str,
) -> Membership:
    """Make a person a member with the given roles. reason names what made them one, for the audit log."""
    if await membership(uow, person_id, community_id) is not None:
        raise Conflict(N_("You are already a member of this community."))
    if Role.HOUSEHOLD_REPRESENTATIVE in roles:
        await _require_no_representative(uow, household_id, person_id)
    member = Membership(
        person_id=person_id, community_id=community_id, household_id=household_id, joined_at=uow.clock.now()
    )
    uow.session.add(member)
    await uow.session.flush()
    assert member.id is not None
    for role in sorted(roles):
        uow.session.add(MembershipRole(membership_id=member.id, role=role))  # flushed with the next statement
    uow.people_changed.add(person_id)
    await audit.record(
        uow,
        action="membership.added",
        subject_type="person",
        subject_id=person_id,
        community_id=community_id,
        actor_id=actor_id,
        # No household id: the audit log names people by bare id only, so after /forget no entry leads from the
        # person to an address (community.audit).
        data={"roles": sorted(r.value for r in roles), "reason": reason},
    )
    return member


async def grant_role(
    uow: UnitOfWork, *, person_id: int, community_id: int, role: Role, actor_id: int | None = None
) -> None:
    """Give a member one more role. actor_id None means the operator at the terminal."""
    if actor_id is not None:
        require(await effective_roles(uow, actor_id, community_id), Action.ASSIGN_ROLE)
    member = await membership(uow, person_id, community_id)
    if member is None or member.id is None:
        raise NotFound(N_("That person is not a member of this community."))
    if role in await roles_of(uow, member.id):
        return
    if role == Role.HOUSEHOLD_REPRESENTATIVE:
        await _require_no_representative(uow, member.household_id, person_id)
    uow.session.add(MembershipRole(membership_id=member.id, role=role))
    await uow.session.flush()
    uow.people_changed.add(person_id)
    await audit.record(
        uow,
        action="role.granted",
        subject_type="person",
        subject_id=person_id,
        community_id=community_id,
        actor_id=actor_id,
        data={"role": role.value},
    )
